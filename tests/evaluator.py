"""An evaluator as the OpenTelemetry GenAI conventions describe one: it judges a call's
answer and reports a `gen_ai.evaluation.result` event through the real OpenTelemetry SDK,
as a log record (the SDK's OTLP log exporter, gRPC or HTTP) parented to the evaluated span,
or as a span event."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

EVENT = "gen_ai.evaluation.result"


def log_exporter(protocol: str, endpoint: str) -> LogRecordExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as G

        return G(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as H

    return H(endpoint=endpoint.rstrip("/") + "/v1/logs")


def attributes(name: str | None, *, score: float | None = None, label: str | None = None,
               explanation: str | None = None, response_id: str | None = None,
               ) -> dict[str, Any]:
    found: dict[str, Any] = {"gen_ai.evaluation.name": name,
                             "gen_ai.evaluation.score.value": score,
                             "gen_ai.evaluation.score.label": label,
                             "gen_ai.evaluation.explanation": explanation,
                             "gen_ai.response.id": response_id}
    return {k: v for k, v in found.items() if v is not None}


class Evaluator:
    """Sends evaluation results as log records through a LoggerProvider."""

    def __init__(self, exporter: LogRecordExporter, service: str = "support-bot") -> None:
        self.provider = LoggerProvider(resource=Resource.create({"service.name": service}))
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, schedule_delay_millis=50))
        self.logger = self.provider.get_logger("tests.evaluator")

    def evaluate(self, call: tuple[str, str] | None, name: str | None, **fields: Any) -> None:
        """One result; `call` is the evaluated span's (trace_id, span_id) in hex, or None
        for a result that names its call by response id only."""
        context = None
        if call is not None:
            span = NonRecordingSpan(SpanContext(
                trace_id=int(call[0], 16), span_id=int(call[1], 16), is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED)))
            context = trace.set_span_in_context(span)
        self.logger.emit(event_name=EVENT, context=context,
                         attributes=attributes(name, **fields))

    def flush(self) -> None:
        assert self.provider.force_flush(30_000), "log records were not exported in time"

    def shutdown(self) -> None:
        self.provider.shutdown()
