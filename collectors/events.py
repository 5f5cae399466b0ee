"""GenAI log records in, `ContentEvent`s out: the texts some conventions keep off the span.

OTel v1.28-1.36 sends one log event per message (`gen_ai.system.message`, `gen_ai.user.message`,
`gen_ai.assistant.message`, `gen_ai.tool.message`) and per choice (`gen_ai.choice`), each with
a kvlist or JSON body; v1.37+ sends one `gen_ai.client.inference.operation.details` event
carrying the whole exchange in its attributes, read as the GenAI reader reads a span's
(`collectors.conventions.genai`). The event name is the LogRecord's `event_name` or, from older
SDKs, its `event.name` attribute. Pure, like `collectors.spans`: records that are not GenAI
events or lack valid ids give None, and nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.logs.v1 import logs_pb2

from collectors.attributes import MAX_INT64, any_value, as_count, as_label, attributes_dict
from collectors.conventions.genai import (
    CHOICE_EVENT,
    DETAILS_EVENT,
    FINISH_REASONS,
    MESSAGE_ATTRIBUTES,
    MESSAGE_EVENTS,
    message_texts,
)
from collectors.messages import content_text, cut, message_text, parse_json
from monitor.core.records import ContentEvent


def extract_event(
    record: logs_pb2.LogRecord, *, seq: int, max_chars: int = 65536
) -> ContentEvent | None:
    """The ContentEvent a GenAI log record carries, or None for any other record."""
    trace_id, span_id = record.trace_id, record.span_id
    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
        return None
    time_ns = record.time_unix_nano or record.observed_time_unix_nano
    attrs = attributes_dict(record.attributes)
    name = record.event_name or attrs.get("event.name")
    if not isinstance(name, str) or time_ns > MAX_INT64:
        return None
    if name == DETAILS_EVENT:
        kind, fields = "details", _details(attrs, _body(record), max_chars)
    elif name == CHOICE_EVENT:
        kind, fields = "choice", _choice(_body(record), max_chars)
    elif name in MESSAGE_EVENTS:
        kind, fields = MESSAGE_EVENTS[name], {"text": cut(message_text(_body(record)), max_chars)}
    else:
        return None
    return ContentEvent(
        trace_id=trace_id.hex(), span_id=span_id.hex(), kind=kind, time_ns=time_ns, seq=seq,
        **fields,
    )


def _body(record: logs_pb2.LogRecord) -> Any:
    """The body as plain Python: a kvlist becomes a dict, a JSON string is parsed."""
    return parse_json(any_value(record.body)) if record.HasField("body") else None


def _choice(body: Any, max_chars: int) -> dict[str, Any]:
    if not isinstance(body, dict):  # a bare string body is the choice's text
        return {"text": cut(content_text(body), max_chars)}
    return {
        "text": cut(message_text(body.get("message")), max_chars),
        "index": as_count(body.get("index")) or 0,
        "finish_reason": as_label(body.get("finish_reason")),
    }


def _details(attrs: Mapping[str, Any], body: Any, max_chars: int) -> dict[str, Any]:
    """The v1.37+ event: messages in its attributes (or, failing that, its body)."""
    in_body = isinstance(body, dict) and attrs.keys().isdisjoint(MESSAGE_ATTRIBUTES)
    texts = message_texts(body if in_body else attrs)
    reasons = attrs.get(FINISH_REASONS)
    reason = reasons[0] if isinstance(reasons, list) and reasons else reasons
    return {
        "finish_reason": as_label(reason) or next(iter(texts.finish_reasons), None),
        "system_prompt": cut(texts.system_prompt, max_chars),
        "prompt": cut(texts.prompt, max_chars),
        "completion": cut(texts.completion, max_chars),
    }
