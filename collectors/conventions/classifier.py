"""Which kind of span it is, and which convention's reader reads it.

The kind comes from the first rule that knows the span, in the research table's order: the
GenAI operation name (OpenLIT's values too), OpenInference's span kind, OpenLLMetry's request
type or Traceloop kind, the span name (GenAI's "{operation} {model}", OpenLLMetry's
"{vendor}.{operation}"), and last v1.26's bare model.

The reader is the first convention whose marks the span bears: OpenLIT, OpenInference,
OpenLLMetry. Each reads GenAI's names first (every convention writes them, and the research
table ranks them first), then its own, then the other conventions' as a last resort, since
instrumentations layer and borrow: nothing a span says is left unread, and the span's own
convention wins only where two of them give one field different values. Texts come from
every source in `ContentSource` order. A span no convention marked (OTel GenAI's of any
version, or an unknown one) is read in the research table's order, and put down to the
convention whose source gave its texts.
"""

from __future__ import annotations

from collectors.conventions import genai, openinference, openlit, openllmetry
from collectors.conventions.reader import OTHER, AttributeReader, Attributes, SpanKind, SpanReader

OPERATION_KINDS = genai.OPERATION_KINDS | openlit.OPERATION_KINDS

GENAI, OPENLLMETRY, OPENINFERENCE = (
    genai.VOCABULARY, openllmetry.VOCABULARY, openinference.VOCABULARY)
OPENLIT = openlit.UNMARKED  # what it says on spans it did not mark: plain text on the events

MARKED: tuple[SpanReader, ...] = (
    AttributeReader.of(openlit.BASE, openlit.VOCABULARY, OPENLLMETRY, OPENINFERENCE,
                       name="openlit", marks=openlit.marks),
    AttributeReader.of(GENAI, OPENINFERENCE, OPENLLMETRY, OPENLIT,
                       name="openinference", marks=openinference.marks),
    AttributeReader.of(GENAI, OPENLLMETRY, OPENINFERENCE, OPENLIT,
                       name="openllmetry", marks=openllmetry.marks),
)
FALLBACK: SpanReader = AttributeReader.of(
    GENAI, OPENLLMETRY, OPENINFERENCE, OPENLIT, name="otel", by_source=True)


def classify(attrs: Attributes, name: str) -> SpanKind:
    """(kind, operation) of a span; ("other", "") when no rule knows it."""
    found = (
        genai.operation_kind(attrs, OPERATION_KINDS)
        or openinference.span_kind(attrs)
        or openllmetry.span_kind(attrs)
    )
    if found is not None:
        return found
    head = name.split(" ", 1)[0]
    return (
        genai.name_kind(head) or openllmetry.name_kind(head) or genai.v126_kind(attrs)
        or (OTHER, "")
    )


def reader_for(attrs: Attributes) -> SpanReader:
    """The reader of the first convention whose marks the span bears, else the fallback."""
    for reader in MARKED:
        if reader.marks(attrs):
            return reader
    return FALLBACK
