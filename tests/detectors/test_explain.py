"""Explanations name what moved, by example texts with personal data and secrets redacted.

Content warning: the demo's abusive answers (monitor/cli/demo_data) are injected below; the
tests assert on which rows and words were chosen and never print the texts.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from detectors.explain import ClusterShift, explain, spherical_kmeans, split_mixed
from detectors.redact import redact
from tests.detectors.conftest import Corpus, concat, embed

DEMO_DATA = Path(__file__).resolve().parents[2] / "monitor" / "cli" / "demo_data"

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


# --- injected topics: the keywords and the examples describe the same texts ---------------


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z][a-z0-9'\-]{2,}", redact(text).lower()))


def describes_injected(shift: ClusterShift, current: Corpus, injected: str) -> bool:
    """Every example is an injected text, and every keyword is a word of the injected texts:
    used by at least two of them, and by a larger share of them than of the other texts."""
    inside = [words(t) for t, lab in zip(current.texts, current.labels, strict=True)
              if lab == injected]
    outside = [words(t) for t, lab in zip(current.texts, current.labels, strict=True)
               if lab != injected]

    def share(word: str, texts: Sequence[set[str]]) -> float:
        return sum(word in w for w in texts) / len(texts)

    return (len(shift.examples) == 3 and len(shift.keywords) >= 3
            and all(current.labels[i] == injected for i in shift.example_rows)
            and all(sum(k in w for w in inside) >= 2 and share(k, inside) > share(k, outside)
                    for k in shift.keywords))


def top_grown(reference: Corpus, current: Corpus) -> ClusterShift:
    shifts = explain(reference.vectors, current.vectors, reference.texts, current.texts)
    assert shifts[0].change > 0, "the most moved cluster is the one that grew"
    return shifts[0]


@pytest.fixture(scope="module")
def demo_answers() -> tuple[Corpus, Corpus]:
    """The demo's benign answers (arena-hard, clipped) and its abusive ones."""
    def load(name: str, label: str) -> Corpus:
        with (DEMO_DATA / f"{name}.jsonl").open(encoding="utf-8") as f:
            texts = tuple(json.loads(line)["text"] for line in f if line.strip())
        return Corpus(texts, (label,) * len(texts), ("",) * len(texts), embed(texts))
    return load("completions", "benign"), load("toxic_completions", "abusive")


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_abusive_answers_among_code_answers_are_described_by_the_abusive_answers(
        demo_answers: tuple[Corpus, Corpus], seed: int) -> None:
    # as in `driftwatch demo`: 300 answers drawn from the benign ones, then 300 of which a
    # fifth are abusive; the abusive answers fall in a cluster with code answers
    benign, abusive = demo_answers
    rng = random.Random(seed)
    reference = benign.take([rng.randrange(len(benign)) for _ in range(300)])
    picks = [(abusive, rng.randrange(len(abusive))) if rng.random() < 0.2
             else (benign, rng.randrange(len(benign))) for _ in range(300)]
    current = concat(*(corpus.take([i]) for corpus, i in picks))
    top = top_grown(reference, current)
    grew, described = top.change > 0.12, describes_injected(top, current, "abusive")
    assert grew and described  # bools only: a failure must not print the abusive texts


@pytest.mark.parametrize("group", ["top_up", "cash_atm"])
def test_a_held_out_banking_topic_is_described_by_its_queries(banking: Corpus,
                                                              group: str) -> None:
    train, test = banking.split("train"), banking.split("test")
    reference = train.not_labelled(group).head(900)
    current = concat(test.not_labelled(group).head(810), test.labelled(group).head(90))
    described = describes_injected(top_grown(reference, current), current, group)
    assert described


@pytest.mark.parametrize("domain", ["kitchen_and_dining", "auto_and_commute"])
def test_a_held_out_clinc_domain_is_described_by_its_queries(clinc: Corpus,
                                                            domain: str) -> None:
    others = clinc.not_labelled("oos").not_labelled(domain)
    reference = others.head(600)
    current = concat(others.take(range(600, 1140)), clinc.labelled(domain).head(60))
    described = describes_injected(top_grown(reference, current), current, domain)
    assert described


def test_jailbreaks_among_banking_queries_are_described_by_the_jailbreaks(
        banking: Corpus, jailbreak: Corpus) -> None:
    reference = banking.split("train").head(1000)
    current = concat(banking.split("test").head(940), jailbreak.head(60))
    described = describes_injected(top_grown(reference, current), current, "jailbreak")
    assert described


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


def test_a_cluster_is_split_where_its_windows_disagree_and_only_there() -> None:
    rng = np.random.default_rng(2)
    old, new = _unit(rng.standard_normal((2, 16)))
    blob = lambda centre, n: _unit(centre + 0.1 * rng.standard_normal((n, 16)))  # noqa: E731
    # one cluster: an old topic in both windows and a new one in the current window only
    pooled = np.vstack([blob(old, 100), blob(old, 100), blob(new, 40)])
    is_current = np.arange(240) >= 100
    labels = split_mixed(pooled, np.zeros(240, dtype=int), is_current, rng, max_splits=5)
    assert len(set(labels[200:])) == 1 and not set(labels[200:]) & set(labels[:200])
    assert len(set(labels[:200])) == 1  # the old topic's halves agree: joined again
    # two topics in the same mix in both windows: nothing to split
    same_mix = np.vstack([blob(old, 60), blob(new, 60), blob(old, 60), blob(new, 60)])
    labels = split_mixed(same_mix, np.zeros(240, dtype=int), np.arange(240) >= 120, rng,
                         max_splits=5)
    assert len(set(labels)) == 1


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
