"""Which kind of span it is, and which convention's reader reads it.

The kind comes from the first rule that knows the span, in the research table's order: the
GenAI operation name (OpenLIT's values too), OpenInference's span kind, OpenLLMetry's request
type or Traceloop kind, the span name (GenAI's "{operation} {model}", OpenLLMetry's
"{vendor}.{operation}"), and last v1.26's bare model.

The reader is the first convention whose marks the span bears (OpenLIT, OpenInference,
OpenLLMetry), else GenAI's, which reads OTel spans of any version and spans no convention
marked. Every reader reads every convention's names, in the research table's order (GenAI,
OpenLLMetry, OpenInference, OpenLIT: first match wins) and every text source in
`ContentSource` order, since instrumentations layer and borrow: OpenLLMetry 0.55 writes GenAI's
messages, a framework span may carry another library's tokens. What the marks decide is the
convention a call is put down to (GenAI's reader: the one whose source gave its texts) and,
for OpenLIT, that the v1.26 span events hold its plain text, not GenAI's JSON.
"""

from __future__ import annotations

from collectors.conventions import genai, openinference, openlit, openllmetry
from collectors.conventions.reader import OTHER, AttributeReader, Attributes, SpanKind, SpanReader

OPERATION_KINDS = genai.OPERATION_KINDS | openlit.OPERATION_KINDS
# The attributes the kind rules read: a span with none of them (most non-GenAI spans) goes
# straight to its name.
KIND_ATTRIBUTES = frozenset(
    (genai.OPERATION_NAME, *openinference.KIND_ATTRIBUTES, *openllmetry.KIND_ATTRIBUTES))

GENAI, OPENLLMETRY, OPENINFERENCE = (
    genai.VOCABULARY, openllmetry.VOCABULARY, openinference.VOCABULARY)
OPENLIT = openlit.UNMARKED  # what it says on spans it did not mark: plain text on the events

MARKED: tuple[SpanReader, ...] = (
    AttributeReader.of(openlit.BASE, OPENLLMETRY, OPENINFERENCE, openlit.VOCABULARY,
                       name="openlit", marks=openlit.MARKS),
    AttributeReader.of(GENAI, OPENLLMETRY, OPENINFERENCE, OPENLIT,
                       name="openinference", marks=openinference.MARKS),
    AttributeReader.of(GENAI, OPENLLMETRY, OPENINFERENCE, OPENLIT,
                       name="openllmetry", marks=openllmetry.MARKS),
)
FALLBACK: SpanReader = AttributeReader.of(
    GENAI, OPENLLMETRY, OPENINFERENCE, OPENLIT, name="otel", by_source=True)
# Every mark's attribute name, and each reader's marks unpacked: this runs for every LLM span.
MARK_NAMES = frozenset(n for r in MARKED for n in (*r.marks.names, *dict(r.marks.values)))
_MARKS = tuple((reader.marks.names, reader.marks.values, reader) for reader in MARKED)


def classify(attrs: Attributes, name: str) -> SpanKind:
    """(kind, operation) of a span; ("other", "") when no rule knows it."""
    if not attrs.keys().isdisjoint(KIND_ATTRIBUTES):
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
    """The reader of the first convention whose marks the span bears, else GenAI's."""
    keys = attrs.keys()
    if keys.isdisjoint(MARK_NAMES):  # most spans, in one look
        return FALLBACK
    for names, values, reader in _MARKS:
        if not keys.isdisjoint(names):
            return reader
        for name, value in values:
            if attrs.get(name) == value:
                return reader
    return FALLBACK
