"""The OpenTelemetry GenAI client metrics, derived from every committed LLM call.

Names follow the GenAI semantic conventions as Prometheus spells them
(`gen_ai.client.operation.duration` -> gen_ai_client_operation_duration_seconds, ...), with
the convention's own bucket boundaries, so dashboards built for instrumented apps work on
the daemon's /metrics as well. Labels are the low-cardinality attributes the conventions
name: service, provider, requested model, operation, error type; never texts or ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from monitor.components import CallSink, WriteBatch
from monitor.records import CallStatus, LLMCall

# Bucket boundaries recommended by the GenAI metric conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0)
_LABELS = ["service_name", "gen_ai_provider_name", "gen_ai_request_model",
           "gen_ai_operation_name"]


class GenAiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds", "GenAI operation duration",
            [*_LABELS, "error_type"], buckets=DURATION_BUCKETS, registry=registry)
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Input and output tokens per GenAI operation",
            [*_LABELS, "gen_ai_token_type"], buckets=TOKEN_BUCKETS, registry=registry)
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds", "Time to the first output token of "
            "streamed responses", _LABELS, buckets=TTFT_BUCKETS, registry=registry)

    def observe(self, call: LLMCall) -> None:
        labels = (call.service, call.provider or "", call.request_model or call.model or "",
                  call.operation)
        error = (call.error_type or "error") if call.status is CallStatus.ERROR else ""
        self.duration.labels(*labels, error).observe(call.duration_s)
        if call.input_tokens is not None:
            self.tokens.labels(*labels, "input").observe(call.input_tokens)
        if call.output_tokens is not None:
            self.tokens.labels(*labels, "output").observe(call.output_tokens)
        if call.ttft_s is not None:
            self.ttft.labels(*labels).observe(call.ttft_s)


class MeteredSink:
    """A CallSink that records the GenAI metrics of each batch once it is committed.

    A span the exporter re-delivers after a lost acknowledgement is observed again, as an
    OTel SDK would count a retried operation; the store keeps it once.
    """

    def __init__(self, inner: CallSink, metrics: GenAiMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def submit(self, batch: WriteBatch) -> None:
        await self._inner.submit(batch)
        # A framework span that wraps a provider span of the same exchange is left out,
        # so one call is counted once.
        parents = {(c.trace_id, c.parent_span_id) for c in batch.calls if c.parent_span_id}
        for call in batch.calls:
            if (call.trace_id, call.span_id) not in parents:
                self._metrics.observe(call)
