"""The latency detector as a plugin: its job, and what its results export: gauges (the
quantiles, rates and SLO burn rates), rule fields, and the report page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from detectors.latency import BURN_WINDOWS_S
from monitor.core.records import DetectorResult
from monitor.jobs.config import LatencyConfig
from monitor.jobs.latency.details import DETECTOR, QUANTILES, TTFT_QUANTILES, LatencyDetails
from monitor.jobs.latency.job import LatencyJob
from monitor.jobs.latency.report import latency_report
from monitor.jobs.plugin import Built, DetectorDeps, DetectorPlugin, FieldValue, Gauge, Report

if TYPE_CHECKING:
    from monitor.config import Config

SLOS = ("availability", "latency")
# Not `quantile`: Prometheus reserves that label for summaries (`promtool check metrics`).
QUANTILE_LABEL = "quantile_level"


class LatencyPlugin(DetectorPlugin[LatencyConfig, LatencyDetails]):
    name = DETECTOR
    details_type = LatencyDetails
    directed = False
    gauges = (
        *(Gauge(family="latency_duration_seconds", doc="Call duration quantiles of the window",
                field=f"p{q}_s", labels=((QUANTILE_LABEL, f"0.{q}"),)) for q in QUANTILES),
        *(Gauge(family="latency_ttft_seconds", doc="Time-to-first-token quantiles",
                field=f"ttft_p{q}_s", labels=((QUANTILE_LABEL, f"0.{q}"),))
          for q in TTFT_QUANTILES),
        Gauge(family="latency_requests_per_second", doc="Calls per second in the window",
              field="rate_per_s"),
        Gauge(family="latency_error_ratio", doc="Share of calls that failed",
              field="error_rate"),
        Gauge(family="latency_p95_ratio", doc="p95 duration over the reference's",
              field="p95_ratio", aliases=("statistic",)),
        Gauge(family="latency_output_tokens_per_second", doc="Output tokens per second of "
              "generation", field="output_tokens_per_s"),
        *(Gauge(family="slo_burn_rate", doc="Error-budget burn rate (1 = on budget)",
                field=f"burn_rates.{slo}.{window}", labels=(("slo", slo), ("window", window)))
          for slo in SLOS for window in BURN_WINDOWS_S),
    )

    def section(self, config: Config) -> LatencyConfig:
        return config.latency

    def build(self, section: LatencyConfig, deps: DetectorDeps) -> Built:
        return Built(job=LatencyJob(section, deps.references, deps.store, deps.history,
                                    retention_s=deps.retention_s))

    def detail_fields(self, details: LatencyDetails) -> dict[str, FieldValue]:
        d = details
        fields: dict[str, FieldValue] = {
            "count": d.count, "rate_per_s": d.rate_per_s, "errors": d.errors,
            "error_rate": d.error_rate, "p50_s": d.p50_s, "p90_s": d.p90_s, "p95_s": d.p95_s,
            "p99_s": d.p99_s, "ttft_p50_s": d.ttft_p50_s, "ttft_p95_s": d.ttft_p95_s,
            "output_tokens_per_s": d.output_tokens_per_s,
            "tokens_per_call": d.tokens_per_call, "reference_p95_s": d.reference_p95_s,
            "p95_ratio": d.p95_ratio}
        if d.p95_ratio_ci is not None:
            fields["p95_ratio_ci.0"], fields["p95_ratio_ci.1"] = d.p95_ratio_ci
        fields.update({f"errors_by_type.{kind}": n for kind, n in d.errors_by_type.items()})
        fields.update({f"burn_rates.{slo}.{window}": burn
                       for slo, windows in d.burn_rates.items()
                       for window, burn in windows.items()})
        return fields

    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        return latency_report(result, self.details(result))
