"""The evaluation detector as a plugin: its job, and what its results export: gauges
labelled by the evaluation's name, rule fields, the worst-scored calls an alert quotes,
and the report page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from detectors.redact import redact
from monitor.core.records import DetectorResult
from monitor.jobs.evaluation.config import EvaluationConfig
from monitor.jobs.evaluation.details import DETECTOR, EvaluationDetails
from monitor.jobs.evaluation.job import EvaluationJob
from monitor.jobs.evaluation.report import evaluation_report
from monitor.jobs.plugin import (
    Built,
    DetectorDeps,
    DetectorPlugin,
    FieldValue,
    Gauge,
    Report,
    Sample,
    alert_example,
)

if TYPE_CHECKING:
    from monitor.config import Config

EVALUATION_LABEL = "evaluation"


class EvaluationPlugin(DetectorPlugin[EvaluationConfig, EvaluationDetails]):
    name = DETECTOR
    details_type = EvaluationDetails
    directed = False
    gauges = (
        Gauge(family="evaluation_pass_rate", doc="Share of the window's evaluations that "
              "passed (pass label, or score at the threshold)", field="pass_rate",
              aliases=("statistic",)),
        Gauge(family="evaluation_reference_pass_rate", doc="Pass rate of the reference",
              field="reference_pass_rate"),
        Gauge(family="evaluation_score_mean", doc="Mean evaluation score of the window",
              field="mean_score"),
        Gauge(family="evaluation_reference_score_mean", doc="Mean evaluation score of the "
              "reference", field="reference_mean_score"),
        Gauge(family="evaluation_count", doc="Evaluations in the window", field="count"),
    )

    def section(self, config: Config) -> EvaluationConfig:
        return config.evaluation

    def build(self, section: EvaluationConfig, deps: DetectorDeps) -> Built:
        return Built(job=EvaluationJob(section, deps.references, deps.store, deps.history,
                                       redact=deps.redact))

    def detail_fields(self, details: EvaluationDetails) -> dict[str, FieldValue]:
        d = details
        return {"count": d.count, "mean_score": d.mean_score, "pass_rate": d.pass_rate,
                "passed": d.passed, "judged": d.judged, "reference_count": d.reference_count,
                "reference_mean_score": d.reference_mean_score,
                "reference_pass_rate": d.reference_pass_rate,
                "pass_rate_drop": d.pass_rate_drop, "score_drop": d.score_drop,
                "p_pass_rate": d.p_pass_rate, "p_score": d.p_score}

    def metrics(self, result: DetectorResult) -> list[Sample]:
        """The gauges, each labelled by the evaluation's name after the segment."""
        name = result.evaluation or self.details(result).evaluation
        return [Sample(family=s.family, doc=s.doc, value=s.value,
                       labels=(*s.labels[:2], (EVALUATION_LABEL, name), *s.labels[2:]))
                for s in super().metrics(result)]

    def explanation(self, result: DetectorResult,
                    redact: Callable[[str], str] = redact) -> dict[str, str]:
        """The two worst-scored calls of the window: score or label, completion, why."""
        lines = []
        for e in self.details(result).worst_examples[:2]:
            verdict = f"{e.score:.2f}" if e.score is not None else (e.label or "?")
            said = alert_example(e.completion or e.prompt or "(text not captured)", redact)
            why = f" ({alert_example(e.explanation, redact)})" if e.explanation else ""
            lines.append(f'{verdict}: "{said}"{why}')
        return {"examples": "\n".join(lines)} if lines else {}

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return evaluation_report(result, self.details(result))
