"""The canary as a plugin: its job, and what its results export: a gauge of the measures the
new version regressed on, rule fields, the alert's link to the comparison, and its page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from detectors.redact import redact
from monitor.core.errors import ConfigError
from monitor.core.records import DetectorResult
from monitor.jobs.canary.config import CanaryConfig
from monitor.jobs.canary.details import DETECTOR, CanaryDetails
from monitor.jobs.canary.job import CanaryJob
from monitor.jobs.canary.report import canary_report
from monitor.jobs.plugin import Built, DetectorDeps, DetectorPlugin, FieldValue, Gauge, Report

if TYPE_CHECKING:
    from monitor.config import Config

#: the measures a canary alert may name (rule fields `worse.<measure>`; an evaluation's
#: measures, `evaluation_pass_rate:<name>`, are one field for every name)
REGRESSIBLE = ("latency_p50", "latency_p95", "error_rate", "input_tokens", "output_tokens",
               "cost_per_call", "toxicity_rate", "evaluation_pass_rate", "evaluation_score")


class CanaryPlugin(DetectorPlugin[CanaryConfig, CanaryDetails]):
    name = DETECTOR
    details_type = CanaryDetails
    directed = False
    compares = True
    gauges = (Gauge(family="canary_regressions", doc="Measures on which a service's newest "
                    "version is significantly worse than the one before it",
                    field="regressions"),)

    def section(self, config: Config) -> CanaryConfig:
        return config.canary

    def build(self, section: CanaryConfig, deps: DetectorDeps) -> Built:
        if deps.comparer is None:
            raise ConfigError("canary: needs the comparer, which was not built")
        return Built(job=CanaryJob(section, deps.store, deps.references, deps.history,
                                   deps.comparer))

    def detail_fields(self, details: CanaryDetails) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {
            "regressions": float(len(details.regressed)) if details.measures else None}
        for m in details.measures:
            name = f"worse.{m.measure.partition(':')[0]}"  # one field per evaluation measure
            fields[name] = bool(fields.get(name)) or bool(m.significant and m.worse)
        return fields

    def explanation(self, result: DetectorResult,
                    redact: Callable[[str], str] = redact) -> dict[str, str]:
        """The comparison's verdict per regressed measure."""
        d = self.details(result)
        lines = [m.verdict for m in d.measures if m.measure in d.regressed]
        return {"regressions": "\n".join(lines)} if lines else {}

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return canary_report(result, self.details(result))
