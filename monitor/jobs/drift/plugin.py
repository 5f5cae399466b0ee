"""The drift detector as a plugin: its job (and the self-check job), and what its results
export: gauges, rule fields, the clusters an alert quotes, and the report page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from detectors.redact import redact
from monitor.core.errors import ConfigError
from monitor.core.records import DetectorResult
from monitor.jobs.config import DriftConfig
from monitor.jobs.drift.details import DETECTOR, DriftDetails
from monitor.jobs.drift.job import DriftJob
from monitor.jobs.drift.report import drift_report
from monitor.jobs.plugin import (
    Built,
    DetectorDeps,
    DetectorPlugin,
    FieldValue,
    Gauge,
    Report,
    alert_example,
)
from monitor.jobs.scheduler import JobSpec

if TYPE_CHECKING:
    from monitor.config import Config


class DriftPlugin(DetectorPlugin[DriftConfig, DriftDetails]):
    name = DETECTOR
    details_type = DriftDetails
    reads_texts = True
    gauges = (
        Gauge(family="drift_mmd2", doc="MMD² between reference and current embeddings",
              field="statistic"),
        Gauge(family="drift_p_value", doc="Smallest p-value of the drift tests",
              field="p_value"),
        Gauge(family="drift_classifier_auc", doc="Domain classifier ROC AUC (0.5 = alike)",
              field="classifier_auc"),
        Gauge(family="drift_novel_share", doc="Share of current texts far from the reference",
              field="tests.novelty.statistic"),
        Gauge(family="drift_decision", doc="1 when this run found drift (before hysteresis)",
              field="decision"),
    )

    def section(self, config: Config) -> DriftConfig:
        return config.drift

    def build(self, section: DriftConfig, deps: DetectorDeps) -> Built:
        if deps.texts is None:
            raise ConfigError("drift: needs the text sampler, which was not built")
        job = DriftJob(section, deps.references, deps.texts, deps.history, redact=deps.redact)
        return Built(job=job, more_jobs=(
            JobSpec("self_check", section.self_check_interval, job.self_check),))

    def detail_fields(self, details: DriftDetails) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {
            "decision": details.decision, "alpha": details.alpha,
            "classifier_auc": details.classifier_auc,
            "centroid_distance": details.centroid_distance,
            **{f"hysteresis.{k}": v for k, v in details.hysteresis.to_json().items()}}
        for name, test in details.tests.items():
            fields.update({f"tests.{name}.statistic": test.statistic,
                           f"tests.{name}.p_value": test.p_value,
                           f"tests.{name}.effect": test.effect})
        if details.self_check is not None:
            fields["self_check.false_alarm_rate"] = details.self_check.false_alarm_rate
            fields["self_check.splits"] = details.self_check.splits
        return fields

    def explanation(self, result: DetectorResult,
                    redact: Callable[[str], str] = redact) -> dict[str, str]:
        """The clusters that moved most, with two examples each."""
        lines = []
        for cluster in self.details(result).clusters[:3]:
            words = ", ".join(cluster.keywords[:4])
            quoted = "; ".join(f'"{alert_example(e, redact)}"' for e in cluster.examples[:2])
            lines.append(f"({words}) {cluster.share_reference:.0%} -> "
                         f"{cluster.share_current:.0%} of texts: {quoted}")
        return {"explanation": "\n".join(lines)} if lines else {}

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return drift_report(result, self.details(result))
