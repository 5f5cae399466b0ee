"""The `cost` job: spend per segment against the reference, and budget burn per service.

Per segment and window: calls, priced calls and their cost (exact, summed by the store), and
a uniform sample of at most `sample_cap` priced calls' costs for the rank test
(`detectors.cost`). For a whole service with a daily budget (`cost.budgets`), the spend over
5m, 30m, 1h and 6h, from the same minute rollup the latency job's burn rates use
(`monitor.store.burn_counts`), as burn rates of the budget.
"""

from __future__ import annotations

import math
import time

import numpy as np

from detectors.cost import BUDGET_WINDOWS_S, CostRegression, Spend, budget_burn, regression
from monitor.core.components import Store
from monitor.core.records import DetectorResult, Segment
from monitor.jobs.cost.config import CostConfig
from monitor.jobs.cost.details import DETECTOR, CostDetails
from monitor.jobs.references import Reference, References, Window
from monitor.store.burn_counts import TrailingCounts
from monitor.store.history import SqliteHistory


class CostJob:
    """The `cost` job; `run` is what the scheduler calls."""

    def __init__(self, config: CostConfig, references: References, store: Store,
                 history: SqliteHistory) -> None:
        self._config = config
        self._references = references
        self._store = store
        self._history = history
        self._trailing = TrailingCounts(store, slow_s=math.inf)

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        since = now - int(max(self._config.window, *BUDGET_WINDOWS_S.values()) * 1e9)
        segments = self._references.segments(since)
        self._trailing.forget(segments)
        return self._history.record([self._result(segment, now) for segment in segments])

    def _spend(self, segment: Segment, window: Window) -> tuple[Spend, int, np.ndarray]:
        """(the priced calls' spend, every call counted, a sample of their costs)."""
        counted = self._store.count(window.query(segment), slow_s=math.inf)
        costs = self._store.costs(window.query(segment, limit=self._config.sample_cap))
        seconds = (window.end_ns - window.start_ns) / 1e9
        return (Spend(calls=counted.priced, usd=counted.usd, seconds=seconds), counted.calls,
                np.array(costs, dtype=np.float64))

    def _result(self, segment: Segment, now: int) -> DetectorResult:
        cfg = self._config
        reference = self._references.reference(cfg, segment, now)
        window = self._references.current(cfg, reference, now)
        current, count, costs = self._spend(segment, window)
        if reference.window is None:
            before = None
            change = CostRegression(sufficient=False)
        else:
            before, _, before_costs = self._spend(segment, reference.window)
            change = regression(before, current, before_costs, costs, alpha=cfg.alpha,
                                min_ratio=cfg.min_ratio, min_samples=cfg.min_samples)
        budget = cfg.budgets.get(segment.service) if segment.model is None else None
        details = CostDetails(
            count=count, priced=current.calls, spend_usd=current.usd,
            spend_per_hour_usd=current.per_hour, cost_per_call_usd=current.per_call,
            reference=reference.describe(),
            reference_spend_per_hour_usd=before.per_hour if before else None,
            reference_cost_per_call_usd=before.per_call if before else None,
            spend_ratio=change.spend_ratio, cost_per_call_ratio=change.per_call_ratio,
            call_rate_ratio=change.rate_ratio, cost_per_call_p=change.per_call_p,
            call_rate_p=change.rate_p,
            daily_budget_usd=budget.daily_usd if budget else None,
            budget_burn=self._burn(segment, now, budget.daily_usd) if budget else {})
        return DetectorResult(
            detector=DETECTOR, service=segment.service, model=segment.model, direction=None,
            window_start_ns=window.start_ns, window_end_ns=window.end_ns,
            n_reference=before.calls if before else 0, n_current=current.calls,
            statistic=change.spend_ratio, p_value=change.p_value, anomalous=change.regressed,
            summary=_summary(segment, details, change, reference), details=details,
            computed_ns=now)

    def _burn(self, segment: Segment, now: int, daily_usd: float) -> dict[str, float | None]:
        counts = self._trailing.counts(
            segment, now, [length * 1_000_000_000 for length in BUDGET_WINDOWS_S.values()])
        return {name: budget_burn(counted.usd, length, daily_usd)
                for (name, length), counted in zip(BUDGET_WINDOWS_S.items(), counts,
                                                   strict=True)}


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.4g}"


def _summary(segment: Segment, details: CostDetails, change: CostRegression,
             reference: Reference) -> str:
    name = segment.label
    if not details.count:
        return f"no calls to {name} in the window"
    head = (f"{name}: {_usd(details.spend_per_hour_usd)}/h over {details.priced} priced "
            f"calls, {_usd(details.cost_per_call_usd)} per call")
    if not change.sufficient:
        why = reference.waiting or "too few priced calls on one side"
        return f"{head}; insufficient data for a spend test ({why})"
    ratio = change.spend_ratio or 0.0
    if change.regressed:
        return (f"spend regressed on {head}: x{ratio:.2f} the reference's "
                f"({_usd(details.reference_spend_per_hour_usd)}/h)")
    return f"no spend regression on {head} (x{ratio:.2f} the reference's)"
