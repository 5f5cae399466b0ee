"""The detectors' latest results on /metrics, read from the history at scrape time.

The families every detector shares (when its latest result was computed, whether it is
anomalous or had too little data, its sample sizes) are labelled `detector`; each plugin
adds its own gauges (`DetectorPlugin.gauges`). Labels are the segment (model "" = the whole
service), the direction ("" where a detector has none) and fixed names, never values or
texts. One history that cannot be read costs that scrape these families, not the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.metrics import PREFIX, SelfMetrics
from monitor.core.records import DetectorResult, SelfCheckRecord
from monitor.jobs.plugin import DetectorPlugin, Sample

_DIRECTED = ("service", "model", "direction")


def export_results(metrics: SelfMetrics, latest: Callable[[], Sequence[DetectorResult]],
                   self_checks: Callable[[], Sequence[SelfCheckRecord]],
                   detectors: Mapping[str, DetectorPlugin[Any, Any]]) -> None:
    """Export the latest detector results (and drift self-checks) on the metrics' registry."""
    metrics.registry.register(DetectorResults(latest, self_checks, detectors,
                                              metrics.read_failed))


class DetectorResults(Collector):
    def __init__(self, latest: Callable[[], Sequence[DetectorResult]],
                 self_checks: Callable[[], Sequence[SelfCheckRecord]],
                 detectors: Mapping[str, DetectorPlugin[Any, Any]],
                 failed: Callable[[str], None]) -> None:
        self._latest = latest
        self._self_checks = self_checks
        self._detectors = detectors
        self._failed = failed

    def describe(self):  # type: ignore[no-untyped-def]
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        try:
            latest, self_checks = self._latest(), self._self_checks()
        except Exception:
            self._failed(f"{PREFIX}_detector_results")
            return
        families: dict[str, GaugeMetricFamily] = {}
        for sample in self._samples(latest, self_checks):
            family = families.get(sample.family)
            if family is None:
                family = families[sample.family] = GaugeMetricFamily(
                    f"{PREFIX}_{sample.family}", sample.doc,
                    labels=[name for name, _ in sample.labels])
            family.add_metric([value for _, value in sample.labels], sample.value)
        yield from families.values()

    def _samples(self, latest: Sequence[DetectorResult],
                 self_checks: Sequence[SelfCheckRecord]) -> Iterator[Sample]:
        for result in latest:
            yield from _common(result)
            plugin = self._detectors.get(result.detector)
            if plugin is not None:  # a detector since removed: its own gauges are gone
                yield from plugin.metrics(result)
        for check in self_checks:
            if check.false_alarm_rate is not None:
                yield Sample(
                    family="drift_self_check_false_alarm_rate", doc="Share of reference-vs-"
                    "reference splits that would have alarmed",
                    labels=tuple(zip(_DIRECTED, (check.service, check.model or "",
                                                 check.direction.value), strict=True)),
                    value=check.false_alarm_rate)


def _common(r: DetectorResult) -> Iterator[Sample]:
    labels = (("detector", r.detector), ("service", r.service), ("model", r.model or ""),
              ("direction", r.direction.value if r.direction else ""))
    yield Sample(family="detector_result_timestamp_seconds",
                 doc="When the latest result was computed", labels=labels,
                 value=r.computed_ns / 1e9)
    if r.anomalous is not None:
        yield Sample(family="detector_anomalous", doc="1 when the latest result is anomalous, "
                     "0 when not; absent when there was too little data", labels=labels,
                     value=float(r.anomalous))
    yield Sample(family="detector_insufficient_data",
                 doc="1 when the latest result had too little data", labels=labels,
                 value=float(r.anomalous is None))
    for window, n in (("reference", r.n_reference), ("current", r.n_current)):
        yield Sample(family="detector_samples",
                     doc="Calls or texts each side of the latest result",
                     labels=(*labels, ("window", window)), value=float(n))
