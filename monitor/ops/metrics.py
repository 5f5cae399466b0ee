"""The detectors' latest results on /metrics, read from the history at scrape time.

The families every detector shares (when its latest result was computed, whether it is
anomalous or had too little data, its sample sizes) are labelled `detector`; each plugin
adds its own gauges (`DetectorPlugin.gauges`). Labels are the segment (model "" = the whole
service; `split` the version of a split segment, `version=1.4.2`, "" for every other one),
the direction and the evaluation's name ("" where a detector has none, which
Prometheus reads as no label) and fixed names, never values or texts. One history that
cannot be read costs that scrape these families, not the others.

Services and models come from the wire, so each family keeps at most the configured number
of label sets (`metrics.cardinality_limit`, the limits the GenAI histograms use); the rest
fold into one `otel_metric_overflow="true"` series per family carrying their largest value
(an anomaly among them still reads 1). The families are rebuilt from the latest results at
every scrape, so a label set whose result is gone gives its place back.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PromSample

from monitor.core.metrics import PREFIX, SelfMetrics
from monitor.core.records import DetectorResult, SelfCheckRecord
from monitor.jobs.plugin import DetectorPlugin, Sample
from monitor.ops.cardinality import OVERFLOW, OVERFLOW_LABEL, CardinalityLimits, label_value

_DIRECTED = ("service", "model", "direction")
SPLIT_LABEL = "split"


def export_results(metrics: SelfMetrics, latest: Callable[[], Sequence[DetectorResult]],
                   self_checks: Callable[[], Sequence[SelfCheckRecord]],
                   detectors: Mapping[str, DetectorPlugin[Any, Any]],
                   limits: CardinalityLimits | None = None) -> None:
    """Export the latest detector results (and drift self-checks) on the metrics' registry,
    each family bounded by `limits` (the default limit where none is given)."""
    metrics.registry.register(DetectorResults(latest, self_checks, detectors,
                                              metrics.read_failed,
                                              limits or CardinalityLimits()))


class DetectorResults(Collector):
    def __init__(self, latest: Callable[[], Sequence[DetectorResult]],
                 self_checks: Callable[[], Sequence[SelfCheckRecord]],
                 detectors: Mapping[str, DetectorPlugin[Any, Any]],
                 failed: Callable[[str], None], limits: CardinalityLimits) -> None:
        self._latest = latest
        self._self_checks = self_checks
        self._detectors = detectors
        self._failed = failed
        self._limits = limits
        self._exported: set[str] = set()  # families of earlier scrapes, to forget when gone

    def describe(self):  # type: ignore[no-untyped-def]
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        try:
            latest, self_checks = self._latest(), self._self_checks()
        except Exception:
            self._failed(f"{PREFIX}_detector_results")
            return
        families: dict[str, GaugeMetricFamily] = {}
        seen: dict[str, set[Hashable]] = {}
        overflow: dict[str, float] = {}
        for sample in self._samples(latest, self_checks):
            name = f"{PREFIX}_{sample.family}"
            family = families.get(sample.family)
            if family is None:
                family = families[sample.family] = GaugeMetricFamily(
                    name, sample.doc, labels=[label for label, _ in sample.labels])
                seen[sample.family] = set()
            if self._limits.of(name).admit(sample.labels) is OVERFLOW:
                overflow[sample.family] = max(overflow.get(sample.family, sample.value),
                                              sample.value)
                continue
            seen[sample.family].add(sample.labels)
            # an empty `split` (every segment but a split one) is left out of the series, so
            # the exposition of unsplit segments is what it was before segments were split
            labels = {name: label_value(value) for name, value in sample.labels
                      if value or name != SPLIT_LABEL}
            family.samples.append(PromSample(family.name, labels, sample.value, None, None))
        for key, value in overflow.items():
            families[key].samples.append(
                PromSample(families[key].name, {OVERFLOW_LABEL: "true"}, value, None, None))
        for key in self._exported | set(seen):
            self._limits.of(f"{PREFIX}_{key}").forget(seen.get(key, set()))
        self._exported = set(seen)
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
              ("split", r.split or ""), ("direction", r.direction.value if r.direction else ""),
              ("evaluation", r.evaluation or ""))
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
