"""`detectors.compare` on seeded data with known answers: the same distribution on both
sides is no difference, a slower or failing B is a regression on that measure alone, and too
few calls is insufficient data, never "no difference"."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from detectors.compare import CompareSettings, Side, compare, newcombe_interval, shared_prompts
from detectors.evaluation import Scores, scores_of


def side(rng: np.random.Generator, n: int, *, median_s: float = 1.0, error_rate: float = 0.02,
         output_tokens: float = 200, toxic: float | None = None,
         embeddings: np.ndarray | None = None, usd: float = 0.002,
         evaluations: dict[str, Scores] | None = None) -> Side:
    return Side(
        durations_s=rng.lognormal(np.log(median_s), 0.4, n),
        errors=rng.random(n) < error_rate,
        input_tokens=rng.poisson(400, n).astype(float),
        output_tokens=rng.poisson(output_tokens, n).astype(float),
        toxicity=None if toxic is None else np.where(rng.random(n) < toxic, 0.9, 0.1),
        embeddings=embeddings, cost_usd=usd * rng.lognormal(0, 0.3, n),
        evaluations=evaluations or {})


def judged(rng: np.random.Generator, n: int, pass_rate: float) -> Scores:
    """`n` evaluations labelled pass or fail, scored higher when they pass."""
    passed = rng.random(n) < pass_rate
    scores = np.where(passed, rng.beta(5, 2, n), rng.beta(2, 5, n))
    return scores_of(list(scores), ["pass" if p else "fail" for p in passed],
                     pass_labels=("pass",), pass_threshold=0.5)


def by_name(a: Side, b: Side, **settings: object) -> dict[str, object]:
    found = compare(a, b, CompareSettings(**settings))  # type: ignore[arg-type]
    return {m.measure: m for m in found.measures} | {"verdict": found.verdict,
                                                      "regressed": found.regressed}


def test_the_same_distribution_on_both_sides_is_no_difference() -> None:
    rng = np.random.default_rng(1)
    found = compare(side(rng, 800, toxic=0.05), side(rng, 800, toxic=0.05))

    assert found.regressed == ()
    assert found.verdict == "no significant difference between A and B"
    for m in found.measures:
        if m.measure != "completion_drift":
            assert m.significant is False, m
            assert m.p_value is not None and m.interval is not None


def test_a_slower_b_regresses_on_latency_and_nothing_else() -> None:
    rng = np.random.default_rng(2)
    found = by_name(side(rng, 600), side(rng, 600, median_s=1.5))

    assert found["regressed"] == ("latency_p50", "latency_p95")
    p50 = found["latency_p50"]
    assert p50.significant and p50.worse and p50.p_value < 1e-6  # type: ignore[attr-defined]
    low, high = p50.interval  # type: ignore[attr-defined]
    assert 0.3 < low < high < 0.7  # B's median is about 0.5 s longer
    assert "B is worse" in p50.verdict  # type: ignore[attr-defined]
    assert found["error_rate"].significant is False  # type: ignore[attr-defined]
    assert str(found["verdict"]).startswith("B regressed: median latency, p95 latency")


def test_a_faster_b_is_better_not_a_regression() -> None:
    rng = np.random.default_rng(3)
    found = by_name(side(rng, 600, median_s=2.0), side(rng, 600, median_s=1.0))

    assert found["regressed"] == ()
    assert found["latency_p50"].significant and not found["latency_p50"].worse  # type: ignore[attr-defined]
    assert "B is better" in found["latency_p50"].verdict  # type: ignore[attr-defined]


def test_more_errors_and_toxic_completions_are_regressions() -> None:
    rng = np.random.default_rng(4)
    found = by_name(side(rng, 1000, toxic=0.02), side(rng, 1000, error_rate=0.10, toxic=0.10))

    assert set(found["regressed"]) == {"error_rate", "toxicity_rate"}  # type: ignore[arg-type]


def test_a_dearer_b_with_a_lower_pass_rate_regresses_on_cost_and_that_evaluation() -> None:
    rng = np.random.default_rng(11)
    a = side(rng, 600, evaluations={"relevance": judged(rng, 400, 0.9),
                                    "politeness": judged(rng, 400, 0.95),
                                    "only-a": judged(rng, 400, 0.5)})
    b = side(rng, 600, usd=0.003, evaluations={"relevance": judged(rng, 400, 0.6),
                                               "politeness": judged(rng, 400, 0.95)})
    found = by_name(a, b)

    cost = found["cost_per_call"]
    assert cost.significant is True and cost.worse is True  # type: ignore[attr-defined]
    assert cost.unit == "USD" and cost.n_a == cost.n_b == 600  # type: ignore[attr-defined]
    rate = found["evaluation_pass_rate:relevance"]
    assert rate.significant is True and rate.worse is True  # type: ignore[attr-defined]
    assert rate.evaluation == "relevance" and rate.n_a == 400  # type: ignore[attr-defined]
    assert 0.85 < rate.a < 0.95 and 0.55 < rate.b < 0.65  # type: ignore[attr-defined]
    score = found["evaluation_score:relevance"]
    assert score.significant is True and score.worse is True  # type: ignore[attr-defined]
    assert found["evaluation_pass_rate:politeness"].significant is False  # type: ignore[attr-defined]
    assert "evaluation_pass_rate:only-a" not in found  # on one side only: nothing to compare
    assert found["regressed"] == ("cost_per_call", "evaluation_pass_rate:relevance",
                                  "evaluation_score:relevance")
    assert "relevance pass rate" in found["verdict"]  # type: ignore[operator]


def test_a_higher_pass_rate_and_cheaper_calls_are_better_not_regressions() -> None:
    rng = np.random.default_rng(12)
    found = by_name(side(rng, 600, usd=0.003, evaluations={"relevance": judged(rng, 400, 0.7)}),
                    side(rng, 600, evaluations={"relevance": judged(rng, 400, 0.9)}))

    for name in ("cost_per_call", "evaluation_pass_rate:relevance"):
        assert found[name].significant is True, name  # type: ignore[attr-defined]
        assert found[name].worse is False, name  # type: ignore[attr-defined]
    assert found["regressed"] == ()


def test_only_the_most_common_shared_evaluations_are_compared() -> None:
    rng = np.random.default_rng(13)
    names = {f"judge-{i}": 50 + 10 * i for i in range(8)}
    a = side(rng, 100, evaluations={k: judged(rng, n, 0.8) for k, n in names.items()})
    b = side(rng, 100, evaluations={k: judged(rng, n, 0.8) for k, n in names.items()})
    found = compare(a, b, CompareSettings(max_evaluations=3))

    compared = {m.evaluation for m in found.measures if m.evaluation}
    assert compared == {"judge-7", "judge-6", "judge-5"}


def test_unpriced_calls_and_unscored_evaluations_say_why_they_are_not_compared() -> None:
    rng = np.random.default_rng(14)
    labels_only = scores_of([None] * 100, ["pass"] * 100, pass_labels=("pass",),
                            pass_threshold=0.5)
    a = side(rng, 100, evaluations={"thumbs": labels_only})
    b = replace(side(rng, 100, evaluations={"thumbs": labels_only}), cost_usd=np.zeros(0))
    found = by_name(a, b)

    assert "no priced calls" in found["cost_per_call"].verdict  # type: ignore[attr-defined]
    assert "carry no scores" in found["evaluation_score:thumbs"].verdict  # type: ignore[attr-defined]
    assert found["evaluation_pass_rate:thumbs"].significant is False  # type: ignore[attr-defined]


def test_too_few_calls_is_insufficient_data_never_no_difference() -> None:
    rng = np.random.default_rng(5)
    found = compare(side(rng, 10), side(rng, 500, median_s=5.0))

    assert found.verdict == "insufficient data to compare A and B"
    assert all(m.significant is None and m.p_value is None for m in found.measures)
    assert "fewer than the samples needed" in found.measures[0].verdict


def test_unmeasured_measures_say_why() -> None:
    rng = np.random.default_rng(6)
    found = by_name(side(rng, 100), side(rng, 100))

    assert "toxicity detector is off" in found["toxicity_rate"].verdict  # type: ignore[attr-defined]
    assert "no embedder" in found["completion_drift"].verdict  # type: ignore[attr-defined]


def test_completions_that_moved_are_drift_and_the_same_ones_are_not() -> None:
    rng = np.random.default_rng(7)
    centre = rng.normal(size=32)
    moved = centre + rng.normal(size=32) * 1.5

    def rows(mean: np.ndarray) -> np.ndarray:
        x = mean + rng.normal(size=(150, 32))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    same = by_name(side(rng, 150, embeddings=rows(centre)), side(rng, 150, embeddings=rows(centre)))
    drifted = by_name(side(rng, 150, embeddings=rows(centre)),
                      side(rng, 150, embeddings=rows(moved)))

    assert same["completion_drift"].significant is False  # type: ignore[attr-defined]
    assert drifted["completion_drift"].significant is True  # type: ignore[attr-defined]
    assert drifted["completion_drift"].worse is None  # type: ignore[attr-defined]


def test_answers_to_the_same_prompt_are_paired_once_each() -> None:
    pairs = shared_prompts(("p1", "p2", "p1", ""), ("p2", "", "p1", "p1"))

    assert pairs.tolist() == [[0, 2], [1, 0]]


def test_newcombe_interval_covers_the_difference() -> None:
    low, high = newcombe_interval(10, 1000, 50, 1000)

    assert low < 0.04 < high and low > 0


def test_bad_settings_are_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="alpha"):
        CompareSettings(alpha=1.5)
