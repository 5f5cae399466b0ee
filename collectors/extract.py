"""One OTLP export request body in; its calls, content events and counts out.

Pure and picklable both ways, so it runs where the daemon puts it: in an extraction worker
process for large bodies (`collectors.workers`), on a thread of the daemon for small ones.
Decoding happens here too, so a worker parses the protobuf or JSON it was handed and
returns only what the store needs. A body that does not decode raises `BadRequest`; a
malformed span is counted as rejected (partial success) and the rest are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.attributes import attributes_dict
from collectors.evaluations import is_evaluation, record_evaluation, span_evaluations
from collectors.events import extract_event
from collectors.otlp_json import parse_json
from collectors.spans import MalformedSpan, extract_span
from monitor.core.errors import BadRequest
from monitor.core.evaluations import BadEvaluation, Evaluation
from monitor.core.records import ContentEvent, LLMCall

Signal = Literal["traces", "logs", "metrics"]
Media = Literal["protobuf", "json"]

# The partial_success field that counts what a signal's request had refused.
REJECTED_FIELDS: dict[str, str] = {
    "traces": "rejected_spans", "logs": "rejected_log_records", "metrics": "rejected_data_points"}

REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}


@dataclass(slots=True)
class Extracted:
    """What one request yielded, and what it refused (for partial_success)."""

    calls: list[LLMCall] = field(default_factory=list)
    events: list[ContentEvent] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    evaluations_refused: int = 0  # evaluation events without a name, score or call
    received: int = 0  # spans, log records or metric points in the request
    rejected: int = 0
    first_error: str = ""
    kinds: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if not self.first_error:
            self.first_error = reason

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        more = f" (and {self.rejected - 1} more)" if self.rejected > 1 else ""
        return f"{self.rejected} rejected: {self.first_error}{more}"

    def answer(self, signal: Signal, response: Message) -> Message:
        """The export response, with partial_success set when anything was refused."""
        if self.rejected:
            partial: Any = getattr(response, "partial_success")  # noqa: B009
            setattr(partial, REJECTED_FIELDS[signal], self.rejected)
            partial.error_message = self.message
        return response


def extract_body(signal: Signal, body: bytes, media: Media, max_chars: int,
                 variant_key: str | None = None) -> Extracted:
    """Decode one export request and extract it.

    :raises BadRequest: the body is not a valid request of the signal's type.
    """
    message = decode(signal, body, media)
    if isinstance(message, ExportTraceServiceRequest):
        return extract_traces(message, max_chars, variant_key)
    if isinstance(message, ExportLogsServiceRequest):
        return extract_logs(message, max_chars)
    assert isinstance(message, ExportMetricsServiceRequest)
    return Extracted(received=count_points(message))


def decode(signal: Signal, body: bytes, media: Media) -> Message:
    request_type = REQUEST_TYPES[signal]
    if media == "json":
        return parse_json(body, request_type)
    message = request_type()
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeError) as exc:
        raise BadRequest(f"body is not a valid {request_type.DESCRIPTOR.name}: {exc}") from None
    return message


def extract_traces(request: ExportTraceServiceRequest, max_chars: int,
                   variant_key: str | None = None) -> Extracted:
    found = Extracted()
    calls, kinds = found.calls, found.kinds
    for resource_spans in request.resource_spans:
        resource = attributes_dict(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                found.received += 1
                try:
                    verdict = extract_span(span, resource, max_chars=max_chars,
                                           variant_key=variant_key)
                except MalformedSpan as exc:
                    found.reject(str(exc))
                    continue
                kinds[verdict.kind] = kinds.get(verdict.kind, 0) + 1
                if verdict.call is not None:
                    calls.append(verdict.call)
                if span.events:
                    judged, refused = span_evaluations(span, is_call=verdict.call is not None)
                    found.evaluations.extend(judged)
                    found.evaluations_refused += refused
    return found


def extract_logs(request: ExportLogsServiceRequest, max_chars: int) -> Extracted:
    found = Extracted()
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                found.received += 1
                if is_evaluation(record):
                    try:
                        found.evaluations.append(record_evaluation(record))
                    except BadEvaluation as exc:
                        found.evaluations_refused += 1
                        found.reject(str(exc))
                    continue
                event = extract_event(record, seq=found.received, max_chars=max_chars)
                if event is not None:
                    found.events.append(event)
    return found


def count_points(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total
