"""Explanations name what moved, by example texts with personal data and secrets redacted."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.explain import explain, spherical_kmeans
from tests.detectors.conftest import Corpus, concat

# --- clusters on real traffic -------------------------------------------------------------


def test_explanation_names_the_cluster_that_grew(banking: Corpus) -> None:
    train, test = banking.split("train"), banking.split("test")
    reference = train.not_labelled("top_up").head(900)
    current = concat(test.not_labelled("top_up").head(560), test.labelled("top_up").head(140))
    shifts = explain(reference.vectors, current.vectors, reference.texts, current.texts)
    top = shifts[0]
    assert top.share_current - top.share_reference > 0.08
    assert top.p_value < 1e-6 and top.q_value < 0.01
    assert len(top.examples) == 3
    assert {current.labels[i] for i in top.example_rows} == {"top_up"}
    assert any(word.startswith("top") for word in top.keywords)


def test_injected_jailbreaks_lead_the_examples_of_their_cluster(
        banking: Corpus, jailbreak: Corpus) -> None:
    reference = banking.split("train").head(1000)
    current = concat(banking.split("test").head(950), jailbreak.head(50))
    shifts = explain(reference.vectors, current.vectors, reference.texts, current.texts)
    grew = max(shifts, key=lambda s: s.change)
    assert [current.labels[i] for i in grew.example_rows] == ["jailbreak"] * 3


def test_shares_add_up_and_clusters_come_most_moved_first(clinc: Corpus) -> None:
    in_scope = clinc.not_labelled("oos")
    reference, current = in_scope.head(400), in_scope.take(range(400, 800))
    shifts = explain(reference.vectors, current.vectors, reference.texts, current.texts)
    assert 8 <= len(shifts) <= 20
    assert sum(s.share_reference for s in shifts) == pytest.approx(1.0)
    assert sum(s.share_current for s in shifts) == pytest.approx(1.0)
    moves = [abs(s.change) for s in shifts]
    assert moves == sorted(moves, reverse=True)
    assert all(0 < s.p_value <= 1 and s.q_value >= s.p_value for s in shifts)


# --- synthetic ----------------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_examples_are_redacted_before_they_leave() -> None:
    rng = np.random.default_rng(0)
    base = _unit(rng.standard_normal((1, 16)))
    ref = _unit(rng.standard_normal((100, 16)))
    cur = np.vstack([_unit(rng.standard_normal((70, 16))),
                     _unit(base + 0.05 * rng.standard_normal((30, 16)))])
    cur_texts = [f"question {i}" for i in range(70)] + [
        f"my email is user{i}@example.com and card 4111 1111 1111 1111" for i in range(30)]
    shifts = explain(ref, cur, [f"old {i}" for i in range(100)], cur_texts)
    examples = [e for s in shifts for e in s.examples]
    assert any("[EMAIL]" in e and "[CARD]" in e for e in examples)
    assert not any("@example.com" in e or "4111" in e for e in examples)
    assert not any("example" in s.keywords for s in shifts)


def test_clustering_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(1)
    x = _unit(rng.standard_normal((300, 8)))
    a, _ = spherical_kmeans(x, 5, np.random.default_rng(3))
    b, _ = spherical_kmeans(x, 5, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_texts_must_match_the_rows() -> None:
    x = _unit(np.random.default_rng(0).standard_normal((10, 4)))
    with pytest.raises(ValueError, match="one text per embedding row"):
        explain(x, x, ["a"] * 9, ["b"] * 10)
