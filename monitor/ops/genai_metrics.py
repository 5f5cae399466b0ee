"""The OpenTelemetry GenAI client metrics, derived from every committed LLM call.

Names follow the GenAI semantic conventions as Prometheus spells them
(`gen_ai.client.operation.duration` -> gen_ai_client_operation_duration_seconds, ...), with
the convention's own bucket boundaries, so dashboards built for instrumented apps work on
the daemon's /metrics as well. Labels are the low-cardinality attributes the conventions
name: service, provider, requested model, operation, error type; never texts or ids.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Hashable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from monitor.core.components import CallSink, Fresh, WriteBatch
from monitor.core.records import CallStatus, LLMCall
from monitor.ops.cardinality import (
    CardinalityLimits,
    error_type_label,
    label_value,
    overflow_sample,
)
from monitor.ops.cost_metrics import CostMetrics

# Bucket boundaries recommended by the GenAI metric conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                    40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                 16777216, 67108864)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0)
_LABELS = ("service_name", "gen_ai_provider_name", "gen_ai_request_model",
           "gen_ai_operation_name")


class _Series:
    """One label set's buckets (not cumulative), count and sum."""

    __slots__ = ("buckets", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size
        self.sum = 0.0


class BatchHistogram:
    """A Prometheus histogram fed a batch at a time: one lock and a bisect per value.

    prometheus_client's Histogram takes a lock per bucket and per label lookup, which at tens
    of thousands of calls a second cost more than extracting them; this keeps the exposition
    the same (`_bucket` with `le`, `_count`, `_sum`).
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str],
                 buckets: Sequence[float], limits: CardinalityLimits) -> None:
        self.name, self.documentation = name, documentation
        self.labels = list(labels)
        self.bounds = tuple(float(b) for b in buckets)
        self._series: dict[Hashable, _Series] = {}
        self._limit = limits.of(name)

    def observe(self, key: tuple[str, ...], value: float) -> None:
        """Add one value; the caller holds the owner's lock."""
        series = self._series.get(key)
        if series is None:
            admitted = self._limit.admit(key)
            series = self._series.get(admitted)
            if series is None:
                series = self._series[admitted] = _Series(len(self.bounds) + 1)
        series.buckets[bisect_left(self.bounds, value)] += 1
        series.sum += value

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        for key, series in self._series.items():
            total, cumulative = 0, []
            for edge, n in zip(edges, series.buckets, strict=True):
                total += n
                cumulative.append((edge, total))
            if isinstance(key, tuple):
                family.add_metric([label_value(v) for v in key], cumulative, series.sum)
            else:  # the overflow series
                family.samples.extend(
                    [*(overflow_sample(f"{self.name}_bucket", n, le=edge)
                       for edge, n in cumulative),
                     overflow_sample(f"{self.name}_count", total),
                     overflow_sample(f"{self.name}_sum", series.sum)])
        return family


class GenAiMetrics(Collector):
    def __init__(self, registry: CollectorRegistry, limits: CardinalityLimits) -> None:
        self._lock = threading.Lock()
        self.duration = BatchHistogram(
            "gen_ai_client_operation_duration_seconds", "GenAI operation duration",
            [*_LABELS, "error_type"], DURATION_BUCKETS, limits)
        self.tokens = BatchHistogram(
            "gen_ai_client_token_usage", "Input and output tokens per GenAI operation",
            [*_LABELS, "gen_ai_token_type"], TOKEN_BUCKETS, limits)
        self.ttft = BatchHistogram(
            "gen_ai_server_time_to_first_token_seconds", "Time to the first output token of "
            "streamed responses", _LABELS, TTFT_BUCKETS, limits)
        registry.register(self)

    def observe(self, calls: Sequence[LLMCall]) -> None:
        duration, tokens, ttft = self.duration.observe, self.tokens.observe, self.ttft.observe
        with self._lock:
            for call in calls:
                labels = (call.service, call.provider or "",
                          call.request_model or call.response_model or "", call.operation)
                error = (error_type_label(call.error_type or "error")
                         if call.status is CallStatus.ERROR else "")
                duration((*labels, error), call.duration_s)
                if call.input_tokens is not None:
                    tokens((*labels, "input"), call.input_tokens)
                if call.output_tokens is not None:
                    tokens((*labels, "output"), call.output_tokens)
                if call.ttft_s is not None:
                    ttft(labels, call.ttft_s)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = [self.duration.family(), self.tokens.family(), self.ttft.family()]
        yield from families

    def describe(self) -> Iterator[Metric]:
        for histogram in (self.duration, self.tokens, self.ttft):
            yield HistogramMetricFamily(histogram.name, histogram.documentation,
                                        labels=histogram.labels)


class MeteredSink:
    """A CallSink that records the GenAI metrics (and, given `cost`, the spend) of each
    batch once it is committed.

    Only calls the store took as new are counted: a span the exporter re-delivers after a
    lost acknowledgement is stored once and counted once, so the histograms agree with the
    store (`driftwatch_calls_duplicate_total` counts the re-deliveries).
    """

    def __init__(self, inner: CallSink, metrics: GenAiMetrics,
                 cost: CostMetrics | None = None) -> None:
        self._inner = inner
        self._metrics = metrics
        self._cost = cost

    async def submit(self, batch: WriteBatch) -> Fresh:
        fresh = await self._inner.submit(batch)
        calls = (batch.calls if fresh is None
                 else [c for c, new in zip(batch.calls, fresh, strict=True) if new])
        # A framework span that wraps a provider span of the same exchange is left out,
        # so one call is counted once.
        parents = {(c.trace_id, c.parent_span_id) for c in batch.calls if c.parent_span_id}
        counted = ([c for c in calls if (c.trace_id, c.span_id) not in parents]
                   if parents else calls)
        self._metrics.observe(counted)
        if self._cost is not None:
            self._cost.observe(counted)
        return fresh
