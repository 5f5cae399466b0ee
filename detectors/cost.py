"""Has spend regressed against the reference? Pure functions of counts, sums and samples.

Spend per second is calls per second times cost per call, so a spend regression is tested as
its two parts: cost per call with a one-sided Mann–Whitney U test on the priced calls'
costs (current above the reference), and the call rate with the exact conditional test of
two Poisson rates (given n = n_ref + n_cur calls, n_cur is binomial with p = t_cur / (t_ref +
t_cur) when the rates are equal). Each part gets alpha / 2, so under no change the false
alarm rate is at most alpha (Bonferroni); and the spend ratio must reach `min_ratio`, so a
tiny but significant shift on a busy service pages nobody. A budget burn rate is the spend
of a window over the budget's share of that window (1 = spending exactly the daily budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

DAY_S = 86_400.0
#: The budget burn windows, by name: the SRE workbook's paging pairs, a long window with a
#: short one of 1/12 its length (14.4x over 1h and 5m, 6x over 6h and 30m).
BUDGET_WINDOWS_S: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """Priced calls of a window, what they cost, and the window's length."""

    calls: int
    usd: float
    seconds: float

    @property
    def per_hour(self) -> float | None:
        return self.usd / self.seconds * 3600 if self.seconds > 0 else None

    @property
    def per_call(self) -> float | None:
        return self.usd / self.calls if self.calls else None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostRegression:
    sufficient: bool
    spend_ratio: float | None = None  # spend per second, current over reference
    per_call_ratio: float | None = None  # mean cost per call, current over reference
    rate_ratio: float | None = None  # priced calls per second, current over reference
    per_call_p: float | None = None  # one-sided Mann–Whitney U
    rate_p: float | None = None  # one-sided conditional Poisson test
    p_value: float | None = None  # Bonferroni: 2 x the smaller, at most 1
    regressed: bool | None = None  # None: insufficient data


def regression(reference: Spend, current: Spend, reference_costs: np.ndarray,
               current_costs: np.ndarray, *, alpha: float, min_ratio: float,
               min_samples: int) -> CostRegression:
    """Spend of `current` against `reference`; the cost arrays are (samples of) the priced
    calls' costs in USD."""
    if (min(reference.calls, current.calls, reference_costs.size, current_costs.size)
            < min_samples or reference.usd <= 0 or min(reference.seconds, current.seconds) <= 0):
        return CostRegression(sufficient=False)
    per_call_ratio = (current.usd / current.calls) / (reference.usd / reference.calls)
    rate_ratio = (current.calls / current.seconds) / (reference.calls / reference.seconds)
    per_call_p = _rank_p(reference_costs, current_costs)
    rate_p = poisson_rate_p(reference.calls, reference.seconds, current.calls, current.seconds)
    spend_ratio = per_call_ratio * rate_ratio
    part = alpha / 2
    rose = (per_call_p <= part and per_call_ratio > 1) or (rate_p <= part and rate_ratio > 1)
    return CostRegression(
        sufficient=True, spend_ratio=spend_ratio, per_call_ratio=per_call_ratio,
        rate_ratio=rate_ratio, per_call_p=per_call_p, rate_p=rate_p,
        p_value=min(1.0, 2 * min(per_call_p, rate_p)),
        regressed=bool(rose and spend_ratio >= min_ratio))


def poisson_rate_p(reference_calls: int, reference_s: float, current_calls: int,
                   current_s: float) -> float:
    """One-sided p-value that the current call rate exceeds the reference's."""
    n = reference_calls + current_calls
    share = current_s / (reference_s + current_s)
    return float(stats.binomtest(current_calls, n, share, alternative="greater").pvalue)


def _rank_p(reference: np.ndarray, current: np.ndarray) -> float:
    if np.ptp(np.concatenate([reference, current])) == 0:
        return 1.0  # every cost the same: no rank test has anything to say
    return float(stats.mannwhitneyu(current, reference, alternative="greater").pvalue)


def budget_burn(usd: float, window_s: float, daily_usd: float) -> float:
    """Spend over the window divided by the daily budget's share of it."""
    return usd / (daily_usd * window_s / DAY_S) if daily_usd > 0 else math.inf
