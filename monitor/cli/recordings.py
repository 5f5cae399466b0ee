"""Recordings of LLM traffic and how their lines become OTLP export requests.

Two line shapes: the OpenTelemetry Collector file exporter's (an OTLP/JSON export request,
ids in hex) and `driftwatch calls --json` (one call, turned into an OTel GenAI v1.37 chat
span with `call_span`). A `Retimer` says where each recorded time goes in a replay and what
each recorded id becomes. No network; `make_retimer` alone reads the file and the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

SCOPE = "driftwatch.replay"


class LineError(ValueError):
    """One line of the recording cannot be sent; the message says why."""


@dataclass(frozen=True, slots=True)
class Retimer:
    """Where a recorded time goes, and what a recorded id becomes, in this replay."""

    preserve: bool
    speed: float | None
    first_ns: int  # the recording's earliest start
    shift_ns: int  # default mode: added to every time
    started_ns: int  # wall clock at the start of the replay
    salt: bytes

    def start(self, recorded_ns: int) -> int:
        if self.preserve or recorded_ns <= 0:
            return recorded_ns
        if self.speed is not None:
            return self.started_ns + int((recorded_ns - self.first_ns) / self.speed)
        return recorded_ns + self.shift_ns

    def due_s(self, recorded_ns: int) -> float | None:
        """Seconds after the start of the replay that an item starting then is sent."""
        if self.speed is None:
            return None
        return max(0.0, (recorded_ns - self.first_ns) / 1e9 / self.speed)

    def id(self, raw: bytes) -> bytes:
        if self.preserve or not raw or not any(raw):
            return raw
        return hashlib.blake2b(raw, digest_size=len(raw), key=self.salt).digest()


def make_retimer(path: Path, *, preserve: bool, speed: float | None) -> Retimer:
    """The retimer of a replay of `path` starting now (moving times needs a first pass over
    the file, for its earliest start and latest end)."""
    first, last = _time_bounds(path) if not preserve else (0, 0)
    now = time.time_ns()
    return Retimer(preserve=preserve, speed=speed, first_ns=first,
                   shift_ns=now - last if last else 0, started_ns=now, salt=os.urandom(16))


def _time_bounds(path: Path) -> tuple[int, int]:
    """The earliest start and the latest end in the recording (0, 0 if it has none)."""
    low, high = None, None
    with path.open("rb") as f:
        for raw in f:
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            for start, end in _times_of(data):
                low = start if low is None else min(low, start)
                high = end if high is None else max(high, end)
    return low or 0, high or 0


def _times_of(data: Any) -> Iterator[tuple[int, int]]:
    if not isinstance(data, dict):
        return
    if "trace_id" in data and "start" in data:
        try:
            start = _rfc3339_ns(data["start"])
            yield start, start + int(float(data.get("duration_s") or 0) * 1e9)
        except (TypeError, ValueError):
            pass
        return
    for resource in _items(data, "resourceSpans"):
        for scope in _items(resource, "scopeSpans"):
            for span in _items(scope, "spans"):
                start = _nanos(_field(span, "startTimeUnixNano"))
                if start:
                    yield start, max(start, _nanos(_field(span, "endTimeUnixNano")))
    for resource in _items(data, "resourceLogs"):
        for scope in _items(resource, "scopeLogs"):
            for record in _items(scope, "logRecords"):
                at = _nanos(_field(record, "timeUnixNano")) or _nanos(
                    _field(record, "observedTimeUnixNano"))
                if at:
                    yield at, at


def _snake(key: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in key)


def _field(obj: dict[str, Any], key: str) -> Any:
    return obj[key] if key in obj else obj.get(_snake(key))


def _items(obj: Any, key: str) -> list[Any]:
    value = _field(obj, key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def _nanos(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _rfc3339_ns(text: Any) -> int:
    if not isinstance(text, str):
        raise ValueError(f"expected an RFC 3339 time, got: {text!r}")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"expected an RFC 3339 time, got: {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"expected an RFC 3339 time with a zone, got: {text!r}")
    seconds = int(moment.timestamp())
    return seconds * 1_000_000_000 + moment.microsecond * 1000


# -- lines to requests ------------------------------------------------------------------------


def retime_traces(request: Any, retimer: Retimer) -> int:
    """Move a traces request's spans in time and give them this run's ids; the span count."""
    count = 0
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            for span in scope.spans:
                count += 1
                retime_span(span, retimer)
    return count


def retime_span(span: Any, retimer: Retimer) -> None:
    delta = retimer.start(span.start_time_unix_nano) - span.start_time_unix_nano
    span.start_time_unix_nano += delta
    if span.end_time_unix_nano:
        span.end_time_unix_nano += delta
    for event in span.events:
        if event.time_unix_nano:
            event.time_unix_nano += delta
    span.trace_id = retimer.id(span.trace_id)
    span.span_id = retimer.id(span.span_id)
    span.parent_span_id = retimer.id(span.parent_span_id)
    for link in span.links:
        link.trace_id = retimer.id(link.trace_id)
        link.span_id = retimer.id(link.span_id)


def retime_logs(request: Any, retimer: Retimer) -> int:
    """The same for a logs request; the log record count."""
    count = 0
    for resource in request.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                count += 1
                at = record.time_unix_nano or record.observed_time_unix_nano
                delta = retimer.start(at) - at
                if record.time_unix_nano:
                    record.time_unix_nano += delta
                if record.observed_time_unix_nano:
                    record.observed_time_unix_nano += delta
                record.trace_id = retimer.id(record.trace_id)
                record.span_id = retimer.id(record.span_id)
    return count


def earliest(request: Any) -> int:
    """The earliest span start or log record time of an export request (0 if none)."""
    if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
        times = [span.start_time_unix_nano for r in request.resource_spans
                 for s in r.scope_spans for span in s.spans]
    else:
        times = [rec.time_unix_nano or rec.observed_time_unix_nano
                 for r in request.resource_logs for s in r.scope_logs for rec in s.log_records]
    return min((t for t in times if t), default=0)


def call_span(record: dict[str, Any]) -> tuple[str, Any]:
    """A `driftwatch calls --json` object as (service, OTel GenAI v1.37 span).

    :raises LineError: a required field is missing or a field has the wrong type.
    """
    service = _text(record, "service", required=True) or ""
    try:
        start = _rfc3339_ns(record.get("start"))
    except ValueError as exc:
        raise LineError(f"start: {exc}") from None
    duration = _number(record, "duration_s", required=True)
    operation = _text(record, "operation") or "chat"
    request_model = _text(record, "request_model") or _text(record, "model")
    response_model = _text(record, "response_model")
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": _text(record, "provider"),
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": _count(record, "input_tokens"),
        "gen_ai.usage.output_tokens": _count(record, "output_tokens"),
        "gen_ai.request.stream": record.get("streaming"),
        "gen_ai.response.time_to_first_chunk": _number(record, "ttft_s"),
        "error.type": _text(record, "error_type"),
    }
    reasons = record.get("finish_reasons") or []
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise LineError(f"finish_reasons: expected a list of strings, got: {reasons!r}")
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if "total_tokens" in record and record["total_tokens"] is not None and (
            attributes["gen_ai.usage.input_tokens"] is None
            or attributes["gen_ai.usage.output_tokens"] is None):
        attributes["gen_ai.usage.total_tokens"] = _count(record, "total_tokens")
    system, prompt = _text(record, "system_prompt"), _text(record, "prompt")
    completion = _text(record, "completion")
    if system is not None:
        attributes["gen_ai.system_instructions"] = json.dumps(
            [{"type": "text", "content": system}], ensure_ascii=False)
    if prompt is not None:
        attributes["gen_ai.input.messages"] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": prompt}]}],
            ensure_ascii=False)
    if completion is not None:
        attributes["gen_ai.output.messages"] = json.dumps([{
            "role": "assistant", "parts": [{"type": "text", "content": completion}],
            "finish_reason": reasons[0] if reasons else "stop"}], ensure_ascii=False)
    span = trace_pb2.Span(
        trace_id=_hex_id(record, "trace_id", 16), span_id=_hex_id(record, "span_id", 8),
        parent_span_id=_hex_id(record, "parent_span_id", 8, required=False),
        name=f"{operation} {request_model or response_model or ''}".strip(),
        kind=trace_pb2.Span.SPAN_KIND_CLIENT, start_time_unix_nano=start,
        end_time_unix_nano=start + int(float(duration or 0) * 1e9),
        attributes=[_key_value(k, v) for k, v in attributes.items() if v is not None])
    if record.get("status") == "error":
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
        span.status.message = attributes["error.type"] or "error"
    elif record.get("status") not in (None, "ok"):
        raise LineError(f"status: expected ok or error, got: {record.get('status')!r}")
    return service, span


def _text(record: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise LineError(f"{key}: expected a string, got: {value!r}")
    return value


def _number(record: dict[str, Any], key: str, *, required: bool = False) -> float | None:
    value = record.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise LineError(f"{key}: expected a number of seconds, got: {value!r}")
    return float(value)


def _count(record: dict[str, Any], key: str) -> int | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LineError(f"{key}: expected a count, got: {value!r}")
    return value


def _hex_id(record: dict[str, Any], key: str, size: int, *, required: bool = True) -> bytes:
    value = record.get(key)
    if value is None and not required:
        return b""
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise LineError(f"{key}: expected {2 * size} hex characters, got: {value!r}")
    return raw


def _key_value(key: str, value: Any) -> Any:
    return common_pb2.KeyValue(key=key, value=_any_value(value))


def _any_value(value: Any) -> Any:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    if isinstance(value, list):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(
            values=[_any_value(v) for v in value]))
    return common_pb2.AnyValue(string_value=str(value))


def calls_request(spans: list[tuple[str, Any]]) -> Any:
    """One ExportTraceServiceRequest holding call spans, one ResourceSpans per service."""
    by_service: dict[str, list[Any]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    request = trace_service_pb2.ExportTraceServiceRequest()
    for service, items in by_service.items():
        resource = request.resource_spans.add(resource=resource_pb2.Resource(
            attributes=[_key_value("service.name", service)]))
        resource.scope_spans.add(scope=common_pb2.InstrumentationScope(name=SCOPE),
                                 spans=items)
    return request
