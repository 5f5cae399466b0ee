"""Real opentelemetry-proto spans and log records, built the way instrumentations fill them.

Plain Python values become AnyValues as the OTLP exporters encode them: lists as arrays,
dicts as kvlists. Times are relative to START so tests read in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")
PARENT_ID = bytes.fromhex("eee19b7ec3c1b173")
START = 1_763_795_000_000_000_000  # 2025-11-22T07:03:20Z
SECOND = 1_000_000_000
ERROR = Status.STATUS_CODE_ERROR


def any_value(value: Any) -> AnyValue:
    """A Python value as the OTLP exporters encode it."""
    out = AnyValue()
    if isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int):
        out.int_value = value
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Sequence):
        out.array_value.values.extend(any_value(v) for v in value)
    elif isinstance(value, Mapping):
        out.kvlist_value.values.extend(key_values(value))
    return out


def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def as_json(value: Any) -> str:
    """What Python SDKs put in a `gen_ai.*.messages` span attribute: a JSON string."""
    return json.dumps(value)


def event(name: str, attrs: Mapping[str, Any] | None = None, *, at_s: float = 0.0) -> Span.Event:
    return Span.Event(
        name=name, time_unix_nano=START + int(at_s * SECOND), attributes=key_values(attrs or {})
    )


def span(
    name: str,
    attrs: Mapping[str, Any] | None = None,
    *,
    events: Sequence[Span.Event] = (),
    duration_s: float = 1.5,
    status: int = Status.STATUS_CODE_UNSET,
    status_message: str = "",
    trace_id: bytes = TRACE_ID,
    span_id: bytes = SPAN_ID,
    parent_span_id: bytes = PARENT_ID,
    start: int = START,
    dropped_events: int = 0,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_s * SECOND),
        attributes=key_values(attrs or {}),
        events=events,
        dropped_events_count=dropped_events,
        status=Status(code=status, message=status_message),  # type: ignore[arg-type]
    )


def log_event(
    name: str,
    body: Any = None,
    attrs: Mapping[str, Any] | None = None,
    *,
    at_s: float = 0.0,
    in_attribute: bool = False,
    trace_id: bytes = TRACE_ID,
    span_id: bytes = SPAN_ID,
) -> LogRecord:
    """A GenAI log event; `in_attribute` names it the way SDKs before `event_name` did."""
    record = LogRecord(
        time_unix_nano=START + int(at_s * SECOND),
        observed_time_unix_nano=START + int(at_s * SECOND) + 1000,
        trace_id=trace_id,
        span_id=span_id,
        attributes=key_values({**(attrs or {}), **({"event.name": name} if in_attribute else {})}),
    )
    if not in_attribute:
        record.event_name = name
    if body is not None:
        record.body.CopyFrom(any_value(body))
    return record
