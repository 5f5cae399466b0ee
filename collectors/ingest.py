"""The one export path that both OTLP transports call, whatever the wire encoding.

It turns decoded export requests into calls and content events, hands them to the sink,
and waits for the commit; it counts every span, log record and metric point, and reports
malformed spans back as partial success instead of failing the whole request.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.attributes import attributes_dict
from collectors.events import extract_event
from collectors.spans import MalformedSpan, extract_span
from monitor.components import CallSink, WriteBatch
from monitor.metrics import SelfMetrics
from monitor.records import ContentEvent, LLMCall


@dataclass(slots=True)
class Extracted:
    """What one request yielded, and what it refused (for partial_success)."""

    calls: list[LLMCall] = field(default_factory=list)
    events: list[ContentEvent] = field(default_factory=list)
    received: int = 0
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


class Ingestor:
    """Decoded OTLP requests in, committed calls out. Shared by the gRPC and HTTP receivers."""

    def __init__(
        self, sink: CallSink, metrics: SelfMetrics, executor: Executor, *, max_chars: int
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._executor = executor
        self._max_chars = max_chars

    async def traces(self, request: ExportTraceServiceRequest, transport: str) -> Extracted:
        """Extract (off the event loop), commit, count. Raises Overloaded or StoreError."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._executor, self.extract_traces, request)
        m = self._metrics
        m.spans_received.labels(transport).inc(found.received)
        if found.rejected:
            m.spans_refused.labels(transport, "malformed").inc(found.rejected)
        try:
            await self._sink.submit(WriteBatch(calls=found.calls))
        except Exception:
            m.spans_refused.labels(transport, "unavailable").inc(found.received - found.rejected)
            raise
        m.spans_accepted.labels(transport).inc(found.received - found.rejected)
        for kind, n in found.kinds.items():
            m.spans_by_kind.labels(kind).inc(n)
        return found

    async def logs(self, request: ExportLogsServiceRequest, transport: str) -> Extracted:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(self._executor, self.extract_logs, request)
        await self._sink.submit(WriteBatch(events=found.events))
        genai = len(found.events)
        self._metrics.log_records.labels("true").inc(genai)
        self._metrics.log_records.labels("false").inc(found.received - genai)
        return found

    async def metrics(self, request: ExportMetricsServiceRequest, transport: str) -> Extracted:
        found = Extracted(received=_count_points(request))
        self._metrics.metric_points.inc(found.received)
        return found

    def extract_traces(self, request: ExportTraceServiceRequest) -> Extracted:
        found = Extracted()
        for resource_spans in request.resource_spans:
            resource = attributes_dict(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.received += 1
                    try:
                        verdict = extract_span(span, resource, max_chars=self._max_chars)
                    except MalformedSpan as exc:
                        found.reject(str(exc))
                        continue
                    found.kinds[verdict.kind] = found.kinds.get(verdict.kind, 0) + 1
                    if verdict.call is not None:
                        found.calls.append(verdict.call)
        return found

    def extract_logs(self, request: ExportLogsServiceRequest) -> Extracted:
        found = Extracted()
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    found.received += 1
                    event = extract_event(record, seq=found.received, max_chars=self._max_chars)
                    if event is not None:
                        found.events.append(event)
        return found


def _count_points(request: ExportMetricsServiceRequest) -> int:
    total = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    total += len(getattr(metric, kind).data_points)
    return total
