"""Detector results with every field of their details set, as `status --json` shows them
and the previous version stored them: for tests of what results export and how they load."""

from __future__ import annotations

from typing import Any

from monitor.core.records import DetectorResult, Direction
from monitor.daemon import DETECTORS

T0 = 1_700_000_000_000_000_000

FULL_DETAILS: dict[str, dict[str, Any]] = {
    "drift": {
        "decision": True, "reference": "pinned baseline 2026-09-22T10:00:00.000000Z to "
        "2026-09-22T11:00:00.000000Z", "reference_mode": "baseline",
        "hysteresis": {"k": 2, "m": 3, "drift_in_window": 2}, "alpha": 0.01,
        "tests": {"mmd": {"statistic": 0.0123, "p_value": 0.000999, "effect": 0.71},
                  "novelty": {"statistic": 0.27, "p_value": 1.2e-09, "effect": 0.22}},
        "classifier_auc": 0.71, "centroid_distance": 0.18,
        "clusters": [{"cluster": 3, "size": 61, "share_reference": 0.0, "share_current": 0.33,
                      "p_value": 1e-12, "q_value": 4e-12, "examples": ["The ATM ate my card"],
                      "keywords": ["atm", "cash"], "example_rows": [1],
                      "example_window": "current"}],
        "projection": {"reference": [[0.1, -1.25], [0.5, 2.0]], "current": [[3.0, 1.5]]},
        "self_check": {"false_alarm_rate": 0.05, "splits": 20, "computed_ns": T0}},
    "toxicity": {
        "scorer": "logistic-head:sentence-transformers/all-MiniLM-L6-v2", "threshold": 0.77,
        "mean_score": 0.1, "toxic_rate": 0.09, "toxic_count": 13, "ci_low": 0.06,
        "ci_high": 0.13, "reference_rate": 0.01, "reference_mean_score": 0.05,
        "increase": 0.08, "reference": "pinned baseline",
        "top_examples": [{"score": 0.97, "text": "you are useless"}]},
    "latency": {
        "count": 120, "rate_per_s": 0.1333, "errors": 3, "error_rate": 0.025,
        "errors_by_type": {"timeout": 2, "RateLimitError": 1}, "p50_s": 0.8, "p90_s": 1.5,
        "p95_s": 2.1, "p99_s": 4.0, "ttft_p50_s": 0.2, "ttft_p95_s": 0.45,
        "output_tokens_per_s": 41.5, "tokens_per_call": 310.0, "reference": "pinned baseline",
        "reference_p95_s": 1.0, "p95_ratio": 2.1, "p95_ratio_ci": [1.7, 2.6],
        "burn_rates": {slo: {"5m": 2.5, "30m": 1.5, "1h": 0.5, "2h": 0.25, "6h": 0.125,
                             "1d": 0.0625, "3d": 0.03125}
                       for slo in ("availability", "latency")}},
    "cost": {
        "count": 120, "priced": 118, "spend_usd": 3.1, "spend_per_hour_usd": 12.4,
        "cost_per_call_usd": 0.026, "reference": "trailing window",
        "reference_spend_per_hour_usd": 7.5, "reference_cost_per_call_usd": 0.02,
        "spend_ratio": 1.65, "cost_per_call_ratio": 1.3, "call_rate_ratio": 1.27,
        "cost_per_call_p": 0.001, "call_rate_p": 0.02, "daily_budget_usd": 100.0,
        "budget_burn": {"5m": 3.0, "30m": 2.5, "1h": 2.0, "6h": 1.5}},
    "evaluation": {
        "evaluation": "relevance", "count": 200, "mean_score": 0.61, "pass_rate": 0.7,
        "passed": 140, "judged": 200, "reference_count": 300, "reference_mean_score": 0.8,
        "reference_pass_rate": 0.9, "pass_rate_drop": 0.2, "score_drop": 0.19,
        "p_pass_rate": 1e-6, "p_score": 1e-5, "names_tested": 1, "reference": "pinned baseline",
        "worst_examples": [{"score": 0.1, "label": "irrelevant", "explanation": "off topic",
                            "prompt": "Where is my card?", "completion": "Try yoga.",
                            "trace_id": "ab" * 16, "span_id": "cd" * 8}]},
    "canary": {
        "version": "1.4.2", "previous_version": "1.4.1", "first_seen": "2026-09-22T10:00:00Z",
        "comparison": 7, "report": "/reports/compare/7",
        "verdict": "B regressed: p95 latency worse than A", "regressed": ["latency_p95"],
        "measures": [{"measure": "latency_p95", "a": 1.0, "b": 2.1, "p_value": 1e-5,
                      "significant": True, "worse": True,
                      "verdict": "p95 latency: B is worse (A 1 s, B 2.1 s, +110%, p=1e-05)"},
                     {"measure": "error_rate", "a": 0.01, "b": 0.012, "p_value": 0.6,
                      "significant": False, "worse": False,
                      "verdict": "error rate: no significant difference"}]},
}


#: a result's statistic, where a gauge carries it as one of the detector's own fields
STATISTIC = {"latency": 2.1, "toxicity": 0.09, "cost": 1.65, "evaluation": 0.7}


def full_result(detector: str, *, result_id: int = 1) -> DetectorResult:
    """A result of `detector` (for a direction where it has them) with every field set."""
    return DetectorResult(
        id=result_id, detector=detector, service="bot", model="gpt-4o",
        direction=Direction.PROMPT if DETECTORS[detector].directed else None,
        window_start_ns=T0, window_end_ns=T0 + 3600 * 10**9, n_reference=300, n_current=200,
        statistic=STATISTIC.get(detector, 0.0123),
        p_value=1e-5, anomalous=True, summary=f"{detector} changed",
        details=DETECTORS[detector].details_from_json(FULL_DETAILS[detector]),
        computed_ns=T0 + 3600 * 10**9,
        evaluation=FULL_DETAILS[detector]["evaluation"] if detector == "evaluation" else None)
