"""The toxicity detector as a plugin: its scorer and job, and what its results export:
gauges, rule fields, the most toxic texts an alert quotes, and the report page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from detectors.embedder import Embedder
from detectors.redact import redact
from detectors.toxicity import HuggingFaceScorer, LogisticHeadScorer, Scorer, ToxicityHead
from monitor.core.errors import ConfigError
from monitor.core.records import DetectorResult
from monitor.jobs.config import ToxicityConfig
from monitor.jobs.plugin import (
    Built,
    DetectorDeps,
    DetectorPlugin,
    FieldValue,
    Gauge,
    Report,
    alert_example,
)
from monitor.jobs.toxicity.details import DETECTOR, ToxicityDetails
from monitor.jobs.toxicity.job import ToxicityJob
from monitor.jobs.toxicity.report import toxicity_report

if TYPE_CHECKING:
    from monitor.config import Config

SERIES_LIMIT = 200  # runs the report's chart of the rate over time draws


class ToxicityPlugin(DetectorPlugin[ToxicityConfig, ToxicityDetails]):
    name = DETECTOR
    details_type = ToxicityDetails
    reads_texts = True
    report_series = SERIES_LIMIT
    gauges = (
        Gauge(family="toxicity_rate", doc="Share of texts scored toxic at the threshold",
              field="toxic_rate", aliases=("statistic",)),
        Gauge(family="toxicity_rate_ci_high", doc="Upper Wilson 95% bound of the toxic rate",
              field="ci_high"),
        Gauge(family="toxicity_rate_ci_low", doc="Lower Wilson 95% bound of the toxic rate",
              field="ci_low"),
        Gauge(family="toxicity_mean_score", doc="Mean toxicity score", field="mean_score"),
        Gauge(family="toxicity_reference_rate", doc="Toxic rate of the reference",
              field="reference_rate"),
    )

    def section(self, config: Config) -> ToxicityConfig:
        return config.toxicity

    def build(self, section: ToxicityConfig, deps: DetectorDeps) -> Built:
        if deps.texts is None:
            raise ConfigError("toxicity: needs the text sampler, which was not built")
        scorer, threshold = scorer_for(section, deps.texts.embedder)
        job = ToxicityJob(section, deps.references, deps.texts, deps.history, scorer,
                          default_threshold=threshold, redact=deps.redact)
        return Built(job=job, models=(scorer,))

    def detail_fields(self, details: ToxicityDetails) -> dict[str, FieldValue]:
        d = details
        return {"threshold": d.threshold, "mean_score": d.mean_score,
                "toxic_rate": d.toxic_rate, "toxic_count": d.toxic_count, "ci_low": d.ci_low,
                "ci_high": d.ci_high, "reference_rate": d.reference_rate,
                "reference_mean_score": d.reference_mean_score, "increase": d.increase}

    def explanation(self, result: DetectorResult,
                    redact: Callable[[str], str] = redact) -> dict[str, str]:
        """The two most toxic texts of the window, with their scores."""
        examples = [f'{e.score:.2f}: "{alert_example(e.text, redact)}"'
                    for e in self.details(result).top_examples[:2]]
        return {"examples": "\n".join(examples)} if examples else {}

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return toxicity_report(result, self.details(result),
                               [(r, self.details(r)) for r in series])


def scorer_for(section: ToxicityConfig, embedder: Embedder) -> tuple[Scorer, float]:
    """The configured toxicity scorer and its default threshold."""
    if section.model:
        return HuggingFaceScorer(section.model, toxic_labels=section.toxic_labels), 0.5
    head = ToxicityHead.load()
    # The shipped head reads MiniLM vectors: share the daemon's embedder when it is MiniLM.
    shared = embedder if embedder.model_id == head.embedding_model else None
    return LogisticHeadScorer(head, shared), head.threshold
