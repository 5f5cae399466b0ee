"""An LLM app instrumented the way the OpenTelemetry GenAI instrumentation does it, exporting
through the real OpenTelemetry SDK and OTLP exporters (gRPC or HTTP/protobuf)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import SpanKind, Status, StatusCode


class RecordingExporter(SpanExporter):
    """Wraps a real exporter and keeps every export result, as an app's logs would show them."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []
        self.exported: list[ReadableSpan] = []
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        with self._lock:
            self.results.append(result)
            if result is SpanExportResult.SUCCESS:
                self.exported.extend(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    @property
    def failures(self) -> int:
        return sum(r is not SpanExportResult.SUCCESS for r in self.results)


def otlp_exporter(protocol: str, endpoint: str, **kwargs: Any) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as G

        return G(endpoint=endpoint, insecure=kwargs.pop("insecure", True), **kwargs)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as H

    return H(endpoint=endpoint.rstrip("/") + "/v1/traces", **kwargs)


class LLMApp:
    """Makes chat spans with OTel GenAI v1.37+ attributes (content captured as JSON strings)."""

    def __init__(self, exporter: SpanExporter, service: str = "support-bot",
                 version: str | None = None) -> None:
        """`version`: the resource's service.version, as a release sets it."""
        self.exporter = RecordingExporter(exporter)
        resource = {"service.name": service, **({"service.version": version} if version else {})}
        self.provider = TracerProvider(resource=Resource.create(resource))
        self.provider.add_span_processor(
            BatchSpanProcessor(self.exporter, max_queue_size=100_000, max_export_batch_size=512,
                               schedule_delay_millis=50))
        self.tracer = self.provider.get_tracer("tests.apps")

    def chat(self, prompt: str | None, completion: str | None, *, model: str = "gpt-4o-mini",
             provider: str = "openai", system: str | None = None, error: str | None = None,
             input_tokens: int = 42, output_tokens: int = 17, start_ns: int | None = None,
             duration_s: float | None = None, cached_input_tokens: int | None = None,
             response_id: str | None = None,
             attributes: dict[str, Any] | None = None) -> tuple[str, str]:
        """One chat call; returns its (trace_id, span_id) in hex. With `start_ns` and
        `duration_s` the span carries those times (recorded traffic, backfills)."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider,
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.response.finish_reasons": ["stop"],
            "server.address": "api.openai.com",
            **(attributes or {}),
        }
        if cached_input_tokens is not None:
            attributes["gen_ai.usage.cache_read.input_tokens"] = cached_input_tokens
        if response_id is not None:
            attributes["gen_ai.response.id"] = response_id
        messages = []
        if system is not None:
            messages.append({"role": "system", "parts": [{"type": "text", "content": system}]})
        if prompt is not None:
            messages.append({"role": "user", "parts": [{"type": "text", "content": prompt}]})
            attributes["gen_ai.input.messages"] = json.dumps(messages)
        if completion is not None:
            attributes["gen_ai.output.messages"] = json.dumps([{
                "role": "assistant", "parts": [{"type": "text", "content": completion}],
                "finish_reason": "stop"}])
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT,
                                      attributes=attributes, start_time=start_ns)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        ctx = span.get_span_context()
        end = None
        if start_ns is not None and duration_s is not None:
            end = start_ns + int(duration_s * 1e9)
        span.end(end_time=end)
        return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    def http_span(self) -> None:
        """A plain HTTP client span, as any instrumented app also sends."""
        with self.tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
                "http.request.method": "GET", "url.full": "https://example.com/"}):
            pass

    def flush(self, timeout_ms: int = 60_000) -> None:
        assert self.provider.force_flush(timeout_ms), "spans were not exported in time"

    def shutdown(self) -> None:
        self.provider.shutdown()
