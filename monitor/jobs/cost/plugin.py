"""The cost detector as a plugin: its job, what its results export (spend, cost per call,
the spend ratio and budget burn rates as gauges), rule fields, and the report page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from detectors.cost import BUDGET_WINDOWS_S
from monitor.core.records import DetectorResult
from monitor.jobs.cost.config import CostConfig
from monitor.jobs.cost.details import DETECTOR, CostDetails
from monitor.jobs.cost.job import CostJob
from monitor.jobs.cost.report import cost_report
from monitor.jobs.plugin import Built, DetectorDeps, DetectorPlugin, FieldValue, Gauge, Report

if TYPE_CHECKING:
    from monitor.config import Config


class CostPlugin(DetectorPlugin[CostConfig, CostDetails]):
    name = DETECTOR
    details_type = CostDetails
    directed = False
    gauges = (
        Gauge(family="cost_spend_per_hour_usd", doc="USD per hour spent in the window",
              field="spend_per_hour_usd"),
        Gauge(family="cost_per_call_usd", doc="Mean USD per priced call in the window",
              field="cost_per_call_usd"),
        Gauge(family="cost_spend_ratio", doc="Spend per hour over the reference's",
              field="spend_ratio", aliases=("statistic",)),
        *(Gauge(family="cost_budget_burn_rate", doc="Daily budget burn rate (1 = on budget)",
                field=f"budget_burn.{window}", labels=(("window", window),))
          for window in BUDGET_WINDOWS_S),
    )

    def section(self, config: Config) -> CostConfig:
        return config.cost

    def build(self, section: CostConfig, deps: DetectorDeps) -> Built:
        return Built(job=CostJob(section, deps.references, deps.store, deps.history))

    def detail_fields(self, details: CostDetails) -> dict[str, FieldValue]:
        d = details
        fields: dict[str, FieldValue] = {
            "count": d.count, "priced": d.priced, "spend_usd": d.spend_usd,
            "spend_per_hour_usd": d.spend_per_hour_usd,
            "cost_per_call_usd": d.cost_per_call_usd,
            "reference_spend_per_hour_usd": d.reference_spend_per_hour_usd,
            "reference_cost_per_call_usd": d.reference_cost_per_call_usd,
            "spend_ratio": d.spend_ratio, "cost_per_call_ratio": d.cost_per_call_ratio,
            "call_rate_ratio": d.call_rate_ratio, "cost_per_call_p": d.cost_per_call_p,
            "call_rate_p": d.call_rate_p, "daily_budget_usd": d.daily_budget_usd}
        fields.update({f"budget_burn.{window}": burn for window, burn in d.budget_burn.items()})
        return fields

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return cost_report(result, self.details(result))
