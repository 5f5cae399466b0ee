"""A prometheus_client registry read as OTel metric data: names, kinds, labels, buckets and
start times, on a private registry."""

from __future__ import annotations

import time
from collections.abc import Iterator

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    Metric,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, Counter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram
from prometheus_client import Summary as PromSummary
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.ops.prometheus_bridge import PrometheusBridge

SCOPE = InstrumentationScope("driftwatch", "test")


def produce(registry: CollectorRegistry) -> dict[str, Metric]:
    scope = PrometheusBridge(registry, SCOPE).produce()
    assert scope.scope == SCOPE
    return {metric.name: metric for metric in scope.metrics}


def test_a_counter_is_a_monotonic_cumulative_sum_named_without_total() -> None:
    registry = CollectorRegistry()
    spans = Counter("spans_received_total", "Spans received", ["transport"], registry=registry)
    spans.labels("grpc").inc(3)
    spans.labels("http").inc()

    metric = produce(registry)["spans_received"]

    assert isinstance(metric.data, Sum)
    assert metric.data.is_monotonic
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    assert metric.description == "Spans received"
    values = {p.attributes["transport"]: p.value for p in metric.data.data_points}  # type: ignore[index]
    assert values == {"grpc": 3.0, "http": 1.0}


def test_a_series_starts_when_prometheus_created_it() -> None:
    registry = CollectorRegistry()
    before = time.time_ns()
    spans = Counter("spans_total", "Spans", ["transport"], registry=registry)
    spans.labels("grpc").inc()
    after = time.time_ns()

    point = produce(registry)["spans"].data.data_points[0]

    assert before - 1000 <= point.start_time_unix_nano <= after + 1000
    assert point.time_unix_nano >= after


def test_a_histogram_keeps_its_boundaries_and_counts_per_bucket() -> None:
    registry = CollectorRegistry()
    duration = PromHistogram("duration_seconds", "Duration", ["model"],
                             buckets=(0.1, 1.0, 10.0), registry=registry)
    for seconds in (0.05, 0.5, 0.7, 5.0, 50.0):
        duration.labels("gpt-4o").observe(seconds)

    metric = produce(registry)["duration_seconds"]

    assert isinstance(metric.data, Histogram)
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    (point,) = metric.data.data_points
    assert dict(point.attributes or {}) == {"model": "gpt-4o"}  # no `le`
    assert list(point.explicit_bounds) == [0.1, 1.0, 10.0]
    assert list(point.bucket_counts) == [1, 2, 1, 1]  # the last is over 10s
    assert point.count == 5
    assert point.sum == 56.25
    assert point.min is None and point.max is None  # a Prometheus histogram has neither


def test_a_gauge_is_a_gauge_with_its_labels() -> None:
    registry = CollectorRegistry()
    PromGauge("build_info", "Version", ["version"], registry=registry).labels("1.2.3").set(1)

    metric = produce(registry)["build_info"]

    assert isinstance(metric.data, Gauge)
    (point,) = metric.data.data_points
    assert dict(point.attributes or {}) == {"version": "1.2.3"} and point.value == 1.0


class _ReadAtScrape(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("process_start_time_seconds", "Start", value=1_700_000_000.5)
        yield CounterMetricFamily("process_cpu_seconds", "CPU", value=2.5)


def test_a_counter_without_a_created_series_starts_at_the_process_start() -> None:
    registry = CollectorRegistry()
    registry.register(_ReadAtScrape())

    metrics = produce(registry)

    (point,) = metrics["process_cpu_seconds"].data.data_points
    assert point.value == 2.5
    assert point.start_time_unix_nano == 1_700_000_000_500_000_000


def test_summaries_are_left_out() -> None:
    registry = CollectorRegistry()
    PromSummary("request_seconds", "Requests", registry=registry).observe(1)

    assert produce(registry) == {}


def test_a_labelled_metric_is_left_out_until_its_first_use() -> None:
    registry = CollectorRegistry()
    Counter("spans_refused_total", "Refused", ["reason"], registry=registry)

    assert produce(registry) == {}
