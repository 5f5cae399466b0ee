"""One OTLP span in, one verdict out: what kind of span it is, and the `LLMCall` if it is one.

Pure: no I/O, no clock, no state. The span's ids and times are checked (a broken one raises
`MalformedSpan` naming the field); everything else is read tolerantly, whatever type an
attribute turns out to hold. The classifier (`collectors.conventions.classifier`) says what
kind of span it is and which convention's reader reads it; the reader says what the span
tells about the call, and this module builds the `LLMCall` from that, the ids and the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from collectors.attributes import MAX_INT64, as_label, attributes_dict, version_label
from collectors.conventions.classifier import classify, reader_for
from collectors.conventions.reader import (
    AGENT,
    EMBEDDINGS,
    LLM,
    OTHER,
    RETRIEVAL,
    TOOL,
    SpanEvents,
)
from collectors.messages import cut
from monitor.core.evaluations import MAX_RESPONSE_ID_CHARS, RESPONSE_ID
from monitor.core.records import CallStatus, LLMCall


class MalformedSpan(ValueError):
    """A span that breaks the OTLP data model; the message names the field and the value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanVerdict:
    """What a span is: `kind` is llm, embeddings, tool, agent, retrieval or other."""

    call: LLMCall | None  # set only when kind == "llm"
    kind: str


_NOT_CALLS = {kind: SpanVerdict(call=None, kind=kind)
              for kind in (EMBEDDINGS, TOOL, AGENT, RETRIEVAL, OTHER)}

# (trace_id, span_id, parent_span_id, start_time_unix_nano, end_time_unix_nano)
_Ids = tuple[str, str, str | None, int, int]


def extract_span(
    span: trace_pb2.Span, resource: Mapping[str, Any], *, max_chars: int = 65536,
    variant_key: str | None = None,
) -> SpanVerdict:
    """Classify one span and, for an LLM call, extract it. Raises MalformedSpan only.

    `resource` is the span's resource attributes, converted once per ResourceSpans.
    `variant_key` names the attribute (span first, then resource) stored as the call's
    `variant` (`ingest.variant_attribute`).
    """
    ids = _checked_ids(span)
    attrs = attributes_dict(span.attributes)
    kind, operation = classify(attrs, span.name)
    if kind != LLM:
        return _NOT_CALLS.get(kind) or SpanVerdict(call=None, kind=kind)
    call = _call(span, resource, attrs, ids, operation, max_chars)
    version = version_label(resource.get("service.version")) or version_label(
        attrs.get("service.version"))
    variant = None
    if variant_key is not None:
        variant = version_label(attrs.get(variant_key)) or version_label(
            resource.get(variant_key))
    if version is not None or variant is not None:
        call = call._replace(service_version=version, variant=variant)
    return SpanVerdict(kind=kind, call=call)


def _call(
    span: trace_pb2.Span,
    resource: Mapping[str, Any],
    attrs: Mapping[str, Any],
    ids: _Ids,
    operation: str,
    max_chars: int,
) -> LLMCall:
    trace_id, span_id, parent_span_id, start, end = ids
    reader = reader_for(attrs)
    events = reader.events(span)
    texts, source = reader.texts(attrs, events)
    reasons = reader.finish_reasons(attrs, texts)
    status, error_type = _status(span, attrs, events, reasons)
    input_tokens, output_tokens, total_tokens = reader.tokens(attrs)
    request_model, response_model = reader.models(attrs)
    return LLMCall(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id,
        service=_service(resource, attrs), provider=reader.provider(attrs),
        request_model=request_model, response_model=response_model,
        operation=operation, start_ns=start, duration_s=(end - start) / 1e9,
        status=status, error_type=error_type,
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total_tokens,
        streaming=reader.streaming(attrs),
        ttft_s=reader.ttft_s(attrs, events, span),
        finish_reasons=reasons,
        system_prompt=cut(texts.system_prompt, max_chars),
        prompt=cut(texts.prompt, max_chars),
        completion=cut(texts.completion, max_chars),
        content_source=source,
        convention=reader.convention(source),
        cached_input_tokens=reader.cached_input_tokens(attrs),
        response_id=as_label(attrs.get(RESPONSE_ID), MAX_RESPONSE_ID_CHARS),
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


def _status(
    span: trace_pb2.Span, attrs: Mapping[str, Any], events: SpanEvents, reasons: tuple[str, ...]
) -> tuple[CallStatus, str | None]:
    if span.status.code != trace_pb2.Status.STATUS_CODE_ERROR and "error" not in reasons:
        return CallStatus.OK, None
    exception_type = None
    if events.exception is not None:
        exception_type = attributes_dict(events.exception.attributes).get("exception.type")
    candidates = (attrs.get("error.type"), exception_type, span.status.message)
    return CallStatus.ERROR, next(filter(None, map(as_label, candidates)), "error")


def _service(resource: Mapping[str, Any], attrs: Mapping[str, Any]) -> str:
    service = as_label(resource.get("service.name")) or as_label(attrs.get("service.name"))
    return service or "unknown_service"
