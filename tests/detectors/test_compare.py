"""`detectors.compare` on seeded data with known answers: the same distribution on both
sides is no difference, a slower or failing B is a regression on that measure alone, and too
few calls is insufficient data, never "no difference"."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.compare import CompareSettings, Side, compare, newcombe_interval, shared_prompts


def side(rng: np.random.Generator, n: int, *, median_s: float = 1.0, error_rate: float = 0.02,
         output_tokens: float = 200, toxic: float | None = None,
         embeddings: np.ndarray | None = None) -> Side:
    return Side(
        durations_s=rng.lognormal(np.log(median_s), 0.4, n),
        errors=rng.random(n) < error_rate,
        input_tokens=rng.poisson(400, n).astype(float),
        output_tokens=rng.poisson(output_tokens, n).astype(float),
        toxicity=None if toxic is None else np.where(rng.random(n) < toxic, 0.9, 0.1),
        embeddings=embeddings)


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
