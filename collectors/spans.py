"""One OTLP span in, one verdict out: what kind of span it is, and the `LLMCall` if it is one.

Pure: no I/O, no clock, no state. The span's ids and times are checked (a broken one raises
`MalformedSpan` naming the field); everything else is read tolerantly, whatever type an
attribute turns out to hold. Field names come from `collectors.conventions`, in the research
table's priority order; texts come from the highest-priority source that captured any
(`collectors.messages`), with gaps filled from lower ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from opentelemetry.proto.trace.v1 import trace_pb2

from collectors import conventions as cv
from collectors.attributes import (
    MAX_INT64,
    as_count,
    as_flag,
    as_label,
    as_seconds,
    attributes_dict,
    first,
)
from collectors.messages import (
    Texts,
    cut,
    from_messages,
    from_openinference,
    from_openlit,
    from_openllmetry,
    from_raw_io,
)
from monitor.core.records import CallStatus, ContentSource, LLMCall

_CONVENTION_OF_SOURCE = {
    ContentSource.OPENINFERENCE: "openinference",
    ContentSource.RAW_IO: "openinference",
    ContentSource.OPENLLMETRY: "openllmetry",
    ContentSource.OPENLIT: "openlit",
}


class MalformedSpan(ValueError):
    """A span that breaks the OTLP data model; the message names the field and the value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanVerdict:
    """What a span is: `kind` is llm, embeddings, tool, agent, retrieval or other."""

    call: LLMCall | None  # set only when kind == "llm"
    kind: str


class _Events(NamedTuple):
    """The few span events extraction reads, found in one pass over the span's events."""

    prompt: Any = None  # gen_ai.prompt of the gen_ai.content.prompt event
    completion: Any = None
    first_token_ns: int | None = None
    exception: trace_pb2.Span.Event | None = None


_NO_EVENTS = _Events()
_NO_TEXTS = Texts()
_NOT_CALLS = {kind: SpanVerdict(call=None, kind=kind)
              for kind in (cv.EMBEDDINGS, cv.TOOL, cv.AGENT, cv.RETRIEVAL, cv.OTHER)}

# (trace_id, span_id, parent_span_id, start_time_unix_nano, end_time_unix_nano)
_Ids = tuple[str, str, str | None, int, int]


def extract_span(
    span: trace_pb2.Span, resource: Mapping[str, Any], *, max_chars: int = 65536
) -> SpanVerdict:
    """Classify one span and, for an LLM call, extract it. Raises MalformedSpan only.

    `resource` is the span's resource attributes, converted once per ResourceSpans.
    """
    ids = _checked_ids(span)
    attrs = attributes_dict(span.attributes)
    kind, operation = cv.classify(attrs, span.name)
    if kind != cv.LLM:
        return _NOT_CALLS.get(kind) or SpanVerdict(call=None, kind=kind)
    return SpanVerdict(kind=kind, call=_call(span, resource, attrs, ids, operation, max_chars))


def _call(
    span: trace_pb2.Span,
    resource: Mapping[str, Any],
    attrs: Mapping[str, Any],
    ids: _Ids,
    operation: str,
    max_chars: int,
) -> LLMCall:
    trace_id, span_id, parent_span_id, start, end = ids
    events = _scan_events(span)
    texts, source = _texts(attrs, events)
    reasons = _finish_reasons(attrs, texts)
    status, error_type = _status(span, attrs, events, reasons)
    input_tokens, output_tokens, total_tokens = _tokens(attrs)
    return LLMCall(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id,
        service=_service(resource, attrs), provider=_provider(attrs),
        request_model=first(attrs, cv.REQUEST_MODEL, as_label),
        response_model=first(attrs, cv.RESPONSE_MODEL, as_label),
        operation=operation, start_ns=start, duration_s=(end - start) / 1e9,
        status=status, error_type=error_type,
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total_tokens,
        streaming=first(attrs, cv.STREAMING, as_flag),
        ttft_s=_ttft(attrs, events, span, start),
        finish_reasons=reasons,
        system_prompt=cut(texts.system_prompt, max_chars),
        prompt=cut(texts.prompt, max_chars),
        completion=cut(texts.completion, max_chars),
        content_source=source,
        convention=_convention(attrs, source),
    )


def _checked_ids(span: trace_pb2.Span) -> _Ids:
    """(trace_id, span_id, parent_span_id) in hex and the times, once they are known sound."""
    trace_id = _hex_id("trace_id", span.trace_id, 16)
    span_id = _hex_id("span_id", span.span_id, 8)
    parent = span.parent_span_id
    if len(parent) not in (0, 8):
        raise MalformedSpan(f"parent_span_id: expected 0 or 8 bytes, got {len(parent)}")
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        raise MalformedSpan("start_time_unix_nano: must be set, got 0")
    if end < start:
        raise MalformedSpan(f"end_time_unix_nano: {end} is before start_time_unix_nano {start}")
    if end > MAX_INT64:  # past 2262: no datetime, no SQLite INTEGER
        raise MalformedSpan(f"end_time_unix_nano: {end} is out of range (max {MAX_INT64})")
    return trace_id, span_id, parent.hex() if any(parent) else None, start, end


def _hex_id(field: str, value: bytes, size: int) -> str:
    if len(value) != size:
        raise MalformedSpan(f"{field}: expected {size} bytes, got {len(value)}")
    if not any(value):
        raise MalformedSpan(f"{field}: must not be all zero, got {value.hex()}")
    return value.hex()


def _scan_events(span: trace_pb2.Span) -> _Events:
    if not span.events:
        return _NO_EVENTS
    prompt = completion = first_token_ns = exception = None
    for event in span.events:
        name = event.name
        if name == cv.PROMPT_EVENT:
            prompt = attributes_dict(event.attributes).get(cv.LEGACY_PROMPT)
        elif name == cv.COMPLETION_EVENT:
            completion = attributes_dict(event.attributes).get(cv.LEGACY_COMPLETION)
        elif name in cv.FIRST_TOKEN_EVENTS:
            t = event.time_unix_nano
            first_token_ns = t if first_token_ns is None else min(t, first_token_ns)
        elif name == "exception" and exception is None:
            exception = event
    return _Events(prompt, completion, first_token_ns, exception)


def _texts(attrs: Mapping[str, Any], events: _Events) -> tuple[Texts, ContentSource]:
    """The first source that captured any text, its gaps filled from the sources after it."""
    otel = None
    if not attrs.keys().isdisjoint(cv.MESSAGE_ATTRIBUTES):
        otel = from_messages(
            attrs.get(cv.INPUT_MESSAGES),
            attrs.get(cv.OUTPUT_MESSAGES),
            attrs.get(cv.SYSTEM_INSTRUCTIONS),
        )
        if otel.prompt is not None and otel.completion is not None:
            return otel, ContentSource.OTEL_ATTRIBUTES  # the usual v1.37 span: no gap to fill
    best, source = _NO_TEXTS, ContentSource.NONE
    for candidate, found in _sources(attrs, events, otel):
        if found is None or not found.captured:
            continue
        if source is ContentSource.NONE:
            best, source = found, candidate
        else:
            best = best.fill(found)
        if best.prompt is not None and best.completion is not None:
            break
    return best, source


def _sources(
    attrs: Mapping[str, Any], events: _Events, otel: Texts | None
) -> Iterator[tuple[ContentSource, Texts | None]]:
    """Each text source in priority order, read only when the ones before left a gap.

    `otel` is what the v1.37+ message attributes gave, None when the span has none.
    """
    openlit = attrs.get("telemetry.sdk.name") == "openlit"
    if otel is not None:
        yield ContentSource.OTEL_ATTRIBUTES, otel
    has_events = events.prompt is not None or events.completion is not None
    if has_events and not openlit:
        prompt = _json_shaped(events.prompt, openlit)
        completion = _json_shaped(events.completion, openlit)
        if prompt is not None or completion is not None:
            yield ContentSource.OTEL_SPAN_EVENTS, from_messages(prompt, completion)
    # One pass for the flattened conventions, so content-off spans skip their scans.
    flat = {k: v for k, v in attrs.items() if k.startswith(cv.FLATTENED_PREFIXES)}
    if flat:
        yield ContentSource.OPENINFERENCE, from_openinference(flat)
        yield ContentSource.OPENLLMETRY, from_openllmetry(flat)
    if openlit or has_events:
        yield ContentSource.OPENLIT, _openlit(attrs, events, openlit)
    yield ContentSource.RAW_IO, from_raw_io(attrs.get("input.value"), attrs.get("output.value"))


def _openlit(attrs: Mapping[str, Any], events: _Events, openlit: bool) -> Texts | None:
    """OpenLIT's plain strings, on the span or on the same span events as OTel v1.26."""
    prompt, completion = attrs.get(cv.LEGACY_PROMPT), attrs.get(cv.LEGACY_COMPLETION)
    if prompt is None and _json_shaped(events.prompt, openlit) is None:
        prompt = events.prompt
    if completion is None and _json_shaped(events.completion, openlit) is None:
        completion = events.completion
    return from_openlit(prompt, completion)


def _json_shaped(value: Any, openlit: bool) -> Any:
    """The value when it is OTel v1.26 JSON (even cut short); OpenLIT's text is not."""
    if openlit or value is None:
        return None
    if isinstance(value, (list, dict)) or (isinstance(value, str) and value[:1] in ("[", "{")):
        return value
    return None


def _finish_reasons(attrs: Mapping[str, Any], texts: Texts) -> tuple[str, ...]:
    reasons = attrs.get(cv.FINISH_REASONS)
    if isinstance(reasons, str):
        reasons = [reasons]
    found = _labels(reasons) if isinstance(reasons, list) else ()
    if found or texts.finish_reasons:
        return found or _labels(texts.finish_reasons)
    single = as_label(attrs.get(cv.OPENINFERENCE_FINISH_REASON))
    return (single,) if single else ()


def _labels(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple([label for label in map(as_label, values) if label is not None])


def _status(
    span: trace_pb2.Span, attrs: Mapping[str, Any], events: _Events, reasons: tuple[str, ...]
) -> tuple[CallStatus, str | None]:
    if span.status.code != trace_pb2.Status.STATUS_CODE_ERROR and "error" not in reasons:
        return CallStatus.OK, None
    exception_type = None
    if events.exception is not None:
        exception_type = attributes_dict(events.exception.attributes).get("exception.type")
    candidates = (attrs.get("error.type"), exception_type, span.status.message)
    return CallStatus.ERROR, next(filter(None, map(as_label, candidates)), "error")


def _ttft(
    attrs: Mapping[str, Any], events: _Events, span: trace_pb2.Span, start: int
) -> float | None:
    seconds = first(attrs, cv.TTFT_SECONDS, as_seconds)
    if seconds is not None:
        return seconds
    # The SDK drops the oldest events first: with any dropped, the first token may be gone.
    first_token_ns = events.first_token_ns
    if (first_token_ns is not None and first_token_ns >= start
            and span.dropped_events_count == 0):
        return (first_token_ns - start) / 1e9
    millis = first(attrs, cv.TTFT_MILLISECONDS, as_seconds)
    return millis / 1000 if millis is not None else None


def _tokens(attrs: Mapping[str, Any]) -> tuple[int | None, int | None, int | None]:
    input_tokens = first(attrs, cv.INPUT_TOKENS, as_count)
    output_tokens = first(attrs, cv.OUTPUT_TOKENS, as_count)
    total = first(attrs, cv.TOTAL_TOKENS, as_count)
    if total is None and input_tokens is not None and output_tokens is not None:
        total = input_tokens + output_tokens
    return input_tokens, output_tokens, total


def _service(resource: Mapping[str, Any], attrs: Mapping[str, Any]) -> str:
    service = as_label(resource.get("service.name")) or as_label(attrs.get("service.name"))
    return service or "unknown_service"


def _provider(attrs: Mapping[str, Any]) -> str | None:
    name = first(attrs, cv.PROVIDER, as_label)
    if name is not None:
        return cv.normalise_provider(name)
    address = attrs.get("server.address")
    return cv.provider_from_address(address) if isinstance(address, str) else None


def _convention(attrs: Mapping[str, Any], source: ContentSource) -> str:
    """The instrumentation's family by its marks, else by where its texts were found."""
    convention = cv.convention_of(attrs)
    if convention == "otel":
        return _CONVENTION_OF_SOURCE.get(source, convention)
    return convention
