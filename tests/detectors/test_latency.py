"""Latency statistics, regression against a reference, and burn rates."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.latency import (
    BURN_WINDOWS_S,
    CallColumns,
    burn_rate,
    burn_rates,
    regression,
    window_stats,
)
from monitor.core.records import CallStatus, LLMCall


def lognormal(n: int, median_s: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median_s), 0.5, n)


def call(duration_s: float, *, error: str | None = None, ttft_s: float | None = None,
         start_s: float = 1_000.0, output_tokens: int | None = 100) -> LLMCall:
    return LLMCall(trace_id="0" * 31 + "1", span_id="0" * 15 + "1", parent_span_id=None,
                   service="svc", provider="openai", request_model="m", response_model="m",
                   operation="chat", start_ns=int(start_s * 1e9), duration_s=duration_s,
                   status=CallStatus.ERROR if error else CallStatus.OK, error_type=error,
                   ttft_s=ttft_s, input_tokens=20, output_tokens=output_tokens)


def test_a_window_whose_p95_doubled_is_flagged() -> None:
    reference = lognormal(1000, 1.0, seed=1)
    current = lognormal(1000, 2.0, seed=2)

    result = regression(reference, current, alpha=0.01, min_ratio=1.2, min_samples=30)

    assert result.regressed is True
    assert result.p95_ratio == pytest.approx(2.0, rel=0.2)
    assert result.ratio_ci_low is not None and result.ratio_ci_low > 1.2


def test_identical_distributions_are_not_flagged() -> None:
    flagged = [regression(lognormal(1000, 1.0, seed=s), lognormal(1000, 1.0, seed=s + 100),
                          alpha=0.01, min_ratio=1.2, min_samples=30).regressed
               for s in range(20)]

    assert sum(bool(f) for f in flagged) == 0


def test_a_tiny_shift_on_a_huge_sample_is_significant_but_not_a_regression() -> None:
    reference = lognormal(20_000, 1.00, seed=3)
    current = lognormal(20_000, 1.03, seed=4)

    result = regression(reference, current, alpha=0.01, min_ratio=1.2, min_samples=30)

    assert result.p_value is not None and result.p_value < 0.01
    assert result.regressed is False


def test_too_few_calls_is_insufficient_data_not_no_regression() -> None:
    result = regression(lognormal(10, 1.0, 1), lognormal(10, 5.0, 2), alpha=0.01,
                        min_ratio=1.2, min_samples=30)
    assert result.sufficient is False and result.regressed is None


def test_window_stats_report_quantiles_errors_ttft_and_throughput() -> None:
    calls = [call(float(d), ttft_s=0.5) for d in range(1, 101)]
    calls += [call(1.0, error="RateLimitError"), call(1.0, error="RateLimitError"),
              call(30.0, error="Timeout")]

    stats = window_stats(CallColumns.from_calls(calls), window_s=60)

    assert stats.n == 103
    assert stats.rate_per_s == pytest.approx(103 / 60)
    assert stats.error_rate == pytest.approx(3 / 103)
    assert stats.errors_by_type == {"RateLimitError": 2, "Timeout": 1}
    assert stats.p50_s == pytest.approx(50, abs=1.5)
    assert stats.p99_s is not None and stats.p99_s > stats.p95_s > stats.p90_s  # type: ignore[operator]
    assert stats.ttft_p50_s == 0.5
    generating_s = sum(d - 0.5 for d in range(1, 101))
    assert stats.output_tokens_per_s == pytest.approx(100 * 100 / generating_s)


def test_an_empty_window_has_no_quantiles() -> None:
    stats = window_stats(CallColumns.from_calls([]), window_s=60)
    assert stats.n == 0 and stats.p95_s is None and stats.error_rate is None


def test_burn_rate_is_bad_share_over_the_error_budget() -> None:
    now = 100_000.0
    start = np.array([now - 60] * 100 + [now - 3000] * 100)
    bad = np.array([True] * 10 + [False] * 90 + [False] * 100)

    rates = {r.window_s: r for r in burn_rates(start, bad, now_s=now, objective=0.99)}

    assert rates[300].burn == pytest.approx(10.0)  # 10% bad against a 1% budget
    assert rates[3600].burn == pytest.approx(5.0)
    assert rates[300].n == 100 and rates[21600].n == 200 and rates[259200].n == 200


def test_burn_rate_of_an_empty_window_is_unknown() -> None:
    [rate] = burn_rates(np.array([]), np.array([], dtype=bool), now_s=1e5, objective=0.99,
                        windows_s=(300,))
    assert rate.burn is None
    assert burn_rate(0, 0, objective=0.99) is None


def test_burn_windows_pair_each_long_window_with_a_twelfth_of_it() -> None:
    # The SRE workbook's pages (1h & 5m, 6h & 30m) and tickets (1d & 2h, 3d & 6h).
    pairs = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")]
    assert {w for pair in pairs for w in pair} == set(BURN_WINDOWS_S)
    assert all(BURN_WINDOWS_S[long] == 12 * BURN_WINDOWS_S[short] for long, short in pairs)


def test_a_3x_burn_over_a_day_spends_a_tenth_of_a_30_day_budget() -> None:
    burn = burn_rate(1000, 30, objective=0.99)
    assert burn == pytest.approx(3.0)
    assert burn * BURN_WINDOWS_S["1d"] / (30 * 86400) == pytest.approx(0.10)
