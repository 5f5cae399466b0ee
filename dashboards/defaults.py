"""The shipped detector defaults the dashboards draw as thresholds and judge freshness by.

The dashboards are built once and committed, so they show the defaults a daemon starts with;
they are spelled out here, not read from the daemon's config, so that dashboards/ depends on
nothing above it. tests/dashboards checks that every value equals the config's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults:
    drift_alpha: float = 0.01  # drift.alpha
    drift_min_auc: float = 0.55  # drift.min_auc
    latency_min_ratio: float = 1.2  # latency.min_ratio
    cost_min_ratio: float = 1.2  # cost.min_ratio
    slo_availability: float = 0.99  # latency.slo.availability
    #: each scheduled job's interval, seconds (drift.interval, drift.self_check_interval,
    #: toxicity.interval, latency.interval, evaluation.interval, jobs.retention_interval)
    job_intervals_s: dict[str, float] = field(default_factory=lambda: {
        "drift": 900.0, "self_check": 6 * 3600.0, "toxicity": 300.0, "latency": 60.0,
        "evaluation": 300.0, "retention": 3600.0})


DEFAULTS = Defaults()
