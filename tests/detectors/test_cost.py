"""The spend test: calibrated under no change, and it finds a dearer model or more traffic."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.cost import Spend, budget_burn, poisson_rate_p, regression

HOUR = 3600.0


def window(rng: np.random.Generator, *, per_hour: float, mean_usd: float,
           seconds: float = HOUR) -> tuple[Spend, np.ndarray]:
    """Poisson arrivals, lognormal costs (token counts vary call to call)."""
    calls = int(rng.poisson(per_hour * seconds / HOUR))
    costs = rng.lognormal(np.log(mean_usd) - 0.5 * 0.6**2, 0.6, size=calls)
    return Spend(calls=calls, usd=float(costs.sum()), seconds=seconds), costs


def test_under_no_change_the_false_alarm_rate_stays_within_alpha() -> None:
    rng = np.random.default_rng(7)
    runs, alpha = 2_000, 0.05
    alarms = 0
    for _ in range(runs):
        reference, ref_costs = window(rng, per_hour=400, mean_usd=0.002)
        current, cur_costs = window(rng, per_hour=400, mean_usd=0.002)
        # the effect gate left at 1: only the tests' calibration is measured
        alarms += bool(regression(reference, current, ref_costs, cur_costs, alpha=alpha,
                                  min_ratio=1.0, min_samples=30).regressed)
    # binomial(2000, 0.05) stays below 0.05 + 3 standard deviations (0.0146)
    assert alarms / runs <= alpha + 0.0146


def test_a_dearer_model_is_found_by_cost_per_call() -> None:
    rng = np.random.default_rng(1)
    reference, ref_costs = window(rng, per_hour=300, mean_usd=0.002)
    current, cur_costs = window(rng, per_hour=300, mean_usd=0.004)
    found = regression(reference, current, ref_costs, cur_costs, alpha=0.01, min_ratio=1.2,
                       min_samples=30)
    assert found.regressed and found.per_call_ratio == pytest.approx(2, rel=0.2)
    assert found.per_call_p is not None and found.per_call_p < 1e-6


def test_more_traffic_at_the_same_price_is_found_by_the_call_rate() -> None:
    rng = np.random.default_rng(2)
    reference, ref_costs = window(rng, per_hour=300, mean_usd=0.002)
    current, cur_costs = window(rng, per_hour=600, mean_usd=0.002)
    found = regression(reference, current, ref_costs, cur_costs, alpha=0.01, min_ratio=1.2,
                       min_samples=30)
    assert found.regressed and found.rate_ratio == pytest.approx(2, rel=0.15)
    assert found.per_call_p is not None and found.per_call_p > 0.01


def test_a_small_significant_rise_is_not_a_regression_below_min_ratio() -> None:
    rng = np.random.default_rng(3)
    reference, ref_costs = window(rng, per_hour=50_000, mean_usd=0.002)
    current, cur_costs = window(rng, per_hour=53_000, mean_usd=0.002)
    found = regression(reference, current, ref_costs, cur_costs, alpha=0.01, min_ratio=1.2,
                       min_samples=30)
    assert found.rate_p is not None and found.rate_p < 0.001  # significant,
    assert found.regressed is False  # yet 6% more spend pages nobody


def test_too_few_priced_calls_is_insufficient_data_not_no_regression() -> None:
    rng = np.random.default_rng(4)
    reference, ref_costs = window(rng, per_hour=20, mean_usd=0.002)
    current, cur_costs = window(rng, per_hour=400, mean_usd=0.01)
    found = regression(reference, current, ref_costs, cur_costs, alpha=0.01, min_ratio=1.2,
                       min_samples=30)
    assert not found.sufficient and found.regressed is None


def test_identical_costs_everywhere_leave_the_rank_test_silent() -> None:
    same = np.full(100, 0.001)
    spend = Spend(calls=100, usd=0.1, seconds=HOUR)
    found = regression(spend, spend, same, same, alpha=0.01, min_ratio=1.2, min_samples=30)
    assert found.per_call_p == 1.0 and found.regressed is False


def test_the_poisson_rate_test_and_the_budget_burn() -> None:
    assert poisson_rate_p(100, HOUR, 100, HOUR) > 0.4
    assert poisson_rate_p(100, HOUR, 200, HOUR) < 1e-6
    assert poisson_rate_p(100, HOUR, 50, HOUR / 2) > 0.4  # the same rate over half the time
    # 10 USD in an hour against 24 USD a day: 10x the pace
    assert budget_burn(10.0, HOUR, 24.0) == pytest.approx(10.0)
