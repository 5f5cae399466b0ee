"""Reads a prometheus_client registry as OpenTelemetry metric data, so the daemon can push by
OTLP exactly what its /metrics shows: the same families, names, labels and buckets.

This is what the OTel specification calls a MetricProducer, after the Go contrib bridge
(go.opentelemetry.io/contrib/bridges/prometheus); opentelemetry-sdk 1.45 has no MetricProducer
yet (opentelemetry-python#4768), so the push hands `produce()` to the exporter itself.

How a family maps:

- counter `x` (exposed as `x_total`) -> monotonic cumulative Sum named `x`: the OTel name
  without `_total`, which Prometheus-bound exporters add back to monotonic sums;
- histogram -> cumulative explicit-bucket Histogram with the same boundaries, count and sum
  (min and max are unknown and stay unset);
- gauge, info, stateset, unknown -> Gauge, one per sample name;
- summary and gaugehistogram are dropped: the SDK's data model has no such point.

Labels become attributes unchanged (`le` becomes the bucket boundaries). A series starts at
its `_created` sample, or else at the process start (`process_start_time_seconds`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as Family

_GAUGE_TYPES = frozenset({"gauge", "info", "stateset", "unknown"})
_Labels = tuple[tuple[str, str], ...]


class PrometheusBridge:
    """The registry's current values as one OTel scope, read at each `produce()`."""

    def __init__(self, registry: CollectorRegistry, scope: InstrumentationScope) -> None:
        self._registry = registry
        self._scope = scope
        self._fallback_start_ns = time.time_ns()

    def produce(self) -> ScopeMetrics:
        now_ns = time.time_ns()
        families = list(self._registry.collect())
        start_ns = _process_start_ns(families) or self._fallback_start_ns
        # A family without samples (a labelled metric before its first use) is left out, as
        # the SDK leaves out an instrument without points.
        metrics = [metric for family in families if family.samples
                   for metric in _convert(family, start_ns, now_ns)]
        return ScopeMetrics(scope=self._scope, metrics=metrics, schema_url="")


def _convert(family: Family, start_ns: int, now_ns: int) -> Iterator[Metric]:
    if family.type == "counter":
        yield _counter(family, start_ns, now_ns)
    elif family.type == "histogram":
        yield _histogram(family, start_ns, now_ns)
    elif family.type in _GAUGE_TYPES:
        yield from _gauges(family, now_ns)


def _counter(family: Family, start_ns: int, now_ns: int) -> Metric:
    totals: dict[_Labels, float] = {}
    created: dict[_Labels, int] = {}
    for sample in family.samples:
        key = _key(sample.labels)
        if sample.name.endswith("_created"):
            created[key] = _ns(sample.value)
        elif sample.name.endswith("_total"):
            totals[key] = sample.value
    points = [NumberDataPoint(attributes=dict(key), start_time_unix_nano=created.get(key, start_ns),
                              time_unix_nano=now_ns, value=value)
              for key, value in totals.items()]
    return Metric(name=family.name, description=family.documentation, unit=family.unit,
                  data=Sum(data_points=points, is_monotonic=True,
                           aggregation_temporality=AggregationTemporality.CUMULATIVE))


class _Series:
    def __init__(self) -> None:
        self.buckets: list[tuple[float, float]] = []  # (le, cumulative count)
        self.count = 0.0
        self.sum = 0.0
        self.created_ns: int | None = None


def _histogram(family: Family, start_ns: int, now_ns: int) -> Metric:
    series: dict[_Labels, _Series] = {}
    for sample in family.samples:
        labels = {k: v for k, v in sample.labels.items() if k != "le"}
        one = series.setdefault(_key(labels), _Series())
        suffix = sample.name[len(family.name):]
        if suffix == "_bucket":
            one.buckets.append((float(sample.labels["le"]), sample.value))
        elif suffix == "_count":
            one.count = sample.value
        elif suffix == "_sum":
            one.sum = sample.value
        elif suffix == "_created":
            one.created_ns = _ns(sample.value)
    points = []
    for key, one in series.items():
        one.buckets.sort()
        bounds = [le for le, _ in one.buckets if not math.isinf(le)]
        cumulative = [count for le, count in one.buckets if not math.isinf(le)]
        cumulative.append(one.count)  # the +Inf bucket is the count
        counts = [int(c - below) for c, below in zip(cumulative, [0.0, *cumulative[:-1]],
                                                     strict=True)]
        points.append(HistogramDataPoint(
            attributes=dict(key), start_time_unix_nano=one.created_ns or start_ns,
            time_unix_nano=now_ns, count=int(one.count), sum=one.sum, bucket_counts=counts,
            explicit_bounds=bounds,
            # unknown to a Prometheus histogram; None leaves the optional OTLP field unset
            min=None, max=None))  # type: ignore[arg-type]
    return Metric(name=family.name, description=family.documentation, unit=family.unit,
                  data=Histogram(data_points=points,
                                 aggregation_temporality=AggregationTemporality.CUMULATIVE))


def _gauges(family: Family, now_ns: int) -> Iterator[Metric]:
    by_name: dict[str, list[NumberDataPoint]] = {}
    for sample in family.samples:
        by_name.setdefault(sample.name, []).append(NumberDataPoint(
            attributes=dict(sample.labels), start_time_unix_nano=0, time_unix_nano=now_ns,
            value=sample.value))
    for name, points in by_name.items():
        yield Metric(name=name, description=family.documentation, unit=family.unit,
                     data=Gauge(data_points=points))


def _process_start_ns(families: list[Family]) -> int | None:
    for family in families:
        if family.name == "process_start_time_seconds":
            for sample in family.samples:
                return _ns(sample.value)
    return None


def _key(labels: dict[str, Any]) -> _Labels:
    return tuple(sorted(labels.items()))


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)
