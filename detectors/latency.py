"""Latency and traffic statistics of a window of calls, the regression test against a
reference window, and SLO burn rates. Pure functions of arrays: no store, no clock.

A regression needs both a significant one-sided rank test (current slower than reference)
and a p95 ratio past a minimum effect, so tiny shifts on huge samples page nobody.
Burn rates follow the SRE workbook: the share of bad calls in a window divided by the
error budget (1 - objective); 14.4 over 1h means a 30-day budget gone in about 2 days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from monitor.core.components import Timing
from monitor.core.records import CallStatus, LLMCall

#: The trailing windows of the burn rates, by name. The SRE workbook's multiwindow,
#: multi-burn-rate alerts over a 30-day budget page on 14.4x over 1h and 5m or 6x over 6h
#: and 30m, and open a ticket on 3x over 1d and 2h or 1x over 3d and 6h: each long window
#: with a short one of 1/12 its length, so an alert resolves soon after the burn stops.
BURN_WINDOWS_S: dict[str, int] = {
    "5m": 300, "30m": 1800, "1h": 3600, "2h": 7200, "6h": 21600, "1d": 86400, "3d": 259200}


@dataclass(frozen=True, slots=True, kw_only=True)
class CallColumns:
    """The numeric columns of a window of calls (NaN where a value is absent)."""

    start_s: np.ndarray
    duration_s: np.ndarray
    error: np.ndarray  # bool
    error_types: tuple[str | None, ...]
    ttft_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    @classmethod
    def from_timings(cls, timings: Sequence[Timing]) -> CallColumns:
        def column(values: list[float | int | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

        return cls(
            start_s=np.array([t.start_ns / 1e9 for t in timings], dtype=np.float64),
            duration_s=column([t.duration_s for t in timings]),
            error=np.array([t.error for t in timings], dtype=bool),
            error_types=tuple(t.error_type if t.error else None for t in timings),
            ttft_s=column([t.ttft_s for t in timings]),
            input_tokens=column([t.input_tokens for t in timings]),
            output_tokens=column([t.output_tokens for t in timings]),
        )

    @classmethod
    def from_calls(cls, calls: Sequence[LLMCall]) -> CallColumns:
        return cls.from_timings([Timing(
            start_ns=c.start_ns, duration_s=c.duration_s, error=c.status is CallStatus.ERROR,
            error_type=c.error_type, ttft_s=c.ttft_s, input_tokens=c.input_tokens,
            output_tokens=c.output_tokens) for c in calls])

    def __len__(self) -> int:
        return len(self.duration_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyStats:
    n: int
    rate_per_s: float
    error_rate: float | None
    errors_by_type: dict[str, int] = field(default_factory=dict)
    p50_s: float | None = None
    p90_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    output_tokens_per_s: float | None = None
    tokens_per_call: float | None = None


def window_stats(columns: CallColumns, window_s: float) -> LatencyStats:
    n = len(columns)
    if n == 0:
        return LatencyStats(n=0, rate_per_s=0.0, error_rate=None)
    p50, p90, p95, p99 = _quantiles(columns.duration_s, (50, 90, 95, 99))
    ttft50, ttft95 = _quantiles(columns.ttft_s, (50, 95))
    errors = Counter(t or "error" for t, bad in zip(columns.error_types, columns.error,
                                                    strict=True) if bad)
    return LatencyStats(
        n=n, rate_per_s=n / window_s, error_rate=float(columns.error.mean()),
        errors_by_type=dict(errors), p50_s=p50, p90_s=p90, p95_s=p95, p99_s=p99,
        ttft_p50_s=ttft50, ttft_p95_s=ttft95,
        output_tokens_per_s=_tokens_per_second(columns),
        tokens_per_call=_mean(columns.input_tokens + columns.output_tokens),
    )


def _quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    present = values[~np.isnan(values)]
    if present.size == 0:
        return [None] * len(qs)
    return [float(v) for v in np.percentile(present, qs)]


def _mean(values: np.ndarray) -> float | None:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else None


def _tokens_per_second(columns: CallColumns) -> float | None:
    """Output tokens over generation time (after the first token when TTFT is known)."""
    generating = columns.duration_s - np.nan_to_num(columns.ttft_s, nan=0.0)
    ok = ~np.isnan(columns.output_tokens) & (generating > 0) & ~columns.error
    if not ok.any():
        return None
    return float(columns.output_tokens[ok].sum() / generating[ok].sum())


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyRegression:
    """Is the current window slower than the reference? `sufficient` False = can't say."""

    sufficient: bool
    p_value: float | None = None
    p95_ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    regressed: bool | None = None


def regression(reference_s: np.ndarray, current_s: np.ndarray, *, alpha: float,
               min_ratio: float, min_samples: int, bootstraps: int = 1000,
               seed: int = 0) -> LatencyRegression:
    """One-sided Mann-Whitney U (current slower) plus a bootstrap interval on the p95 ratio.

    Regressed when p < alpha and the ratio's lower 95% bound is at least `min_ratio`.
    """
    reference_s = reference_s[~np.isnan(reference_s)]
    current_s = current_s[~np.isnan(current_s)]
    if min(reference_s.size, current_s.size) < min_samples:
        return LatencyRegression(sufficient=False)
    p_value = float(stats.mannwhitneyu(current_s, reference_s, alternative="greater").pvalue)
    ratio = _p95(current_s) / max(_p95(reference_s), 1e-9)
    low, high = _bootstrap_ratio(reference_s, current_s, bootstraps, seed)
    return LatencyRegression(
        sufficient=True, p_value=p_value, p95_ratio=ratio, ratio_ci_low=low,
        ratio_ci_high=high, regressed=bool(p_value < alpha and low >= min_ratio))


def _p95(values: np.ndarray) -> float:
    return float(np.percentile(values, 95))


def _bootstrap_ratio(reference: np.ndarray, current: np.ndarray, bootstraps: int,
                     seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    # Resampling at most 2,000 per side keeps memory flat; the interval barely moves.
    ref = rng.choice(reference, size=(bootstraps, min(reference.size, 2000)), replace=True)
    cur = rng.choice(current, size=(bootstraps, min(current.size, 2000)), replace=True)
    ratios = np.percentile(cur, 95, axis=1) / np.maximum(np.percentile(ref, 95, axis=1), 1e-9)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnRate:
    window_s: int
    n: int
    bad: int
    burn: float | None  # None when the window saw no calls


def burn_rate(n: int, bad: int, *, objective: float) -> float | None:
    """(bad share) / (1 - objective): 1 spends the error budget exactly over the SLO's
    period; None when the window saw no calls."""
    return (bad / n) / (1.0 - objective) if n else None


def burn_rates(start_s: np.ndarray, bad: np.ndarray, *, now_s: float, objective: float,
               windows_s: Sequence[int] = tuple(BURN_WINDOWS_S.values()),
               ) -> tuple[BurnRate, ...]:
    """Burn rate per trailing window of calls given as arrays."""
    rates = []
    for window in windows_s:
        inside = (start_s > now_s - window) & (start_s <= now_s)
        n, n_bad = int(inside.sum()), int(bad[inside].sum())
        rates.append(BurnRate(window_s=window, n=n, bad=n_bad,
                              burn=burn_rate(n, n_bad, objective=objective)))
    return tuple(rates)
