"""Toxicity: the shipped head on real text, the window statistics, and the errors that tell
an operator how to fix a scorer that cannot load.

Texts come from corpora/ (content warning: toxicity.jsonl is offensive; the tests assert on
scores and labels and print no toxic text). Embeddings reuse conftest's MiniLM vectors (the
400 arena-hard completions the drift tests also embed), as the daemon reuses the vectors it
computed for drift; one test scores through the real LocalEmbedder end to end.

Windows of 1,000 calls are drawn with repeats from the 400 completions, the reference and
the live window independently, so under no change both are samples of one population and
Fisher's test keeps its false-alarm rate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from detectors._stats import roc_auc
from detectors.embedder import Embedder
from detectors.redact import redact
from detectors.toxicity import (
    DEFAULT_HEAD,
    HuggingFaceScorer,
    LogisticHeadScorer,
    ToxicityHead,
    ToxicitySummary,
    _toxic_labels,
    rate_increase,
    summarise,
)
from monitor.core.errors import ConfigError
from tests.detectors.conftest import Corpus, embed, read_rows

TRAINED_ON = ("davidson_hate_offensive", "convabuse", "stormfront_hate")
INJECTED_FROM = ("davidson_hate_offensive", "convabuse")
PER_DATASET = 150
WINDOW = 1000


class OtherModelEmbedder(Embedder):
    """A working embedder of another model, for the head/model mismatch check."""

    model_id = "another-model"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 384), dtype=np.float32)


@dataclass(frozen=True)
class Labelled:
    """The first rows of each training dataset in corpora/toxicity.jsonl: held out of
    training by train_toxicity.py, so the head never saw them."""

    texts: tuple[str, ...]
    datasets: tuple[str, ...]
    toxic: np.ndarray
    vectors: np.ndarray

    def toxic_rows(self, datasets: Sequence[str]) -> np.ndarray:
        return np.flatnonzero(self.toxic & np.isin(self.datasets, datasets))


@pytest.fixture(scope="module")
def head() -> ToxicityHead:
    return ToxicityHead.load()


@pytest.fixture(scope="module")
def labelled() -> Labelled:
    rows = [r for d in TRAINED_ON
            for r in [r for r in read_rows("toxicity") if r["dataset"] == d][:PER_DATASET]]
    texts = tuple(str(r["text"]) for r in rows)
    return Labelled(texts, tuple(str(r["dataset"]) for r in rows),
                    np.array([r["toxic"] == 1 for r in rows]), embed(texts))


def traffic(rng: np.random.Generator, benign: Corpus, n: int) -> tuple[np.ndarray, list[str]]:
    """A window of n calls whose completions are drawn, with repeats, from the benign pool."""
    rows = rng.integers(len(benign), size=n)
    return benign.vectors[rows], [benign.texts[i] for i in rows]


def window(head: ToxicityHead, vectors: np.ndarray, texts: Sequence[str]) -> ToxicitySummary:
    return summarise(head.probabilities(vectors), texts, threshold=head.threshold,
                     redact=redact)


def test_shipped_head_ranks_toxic_rows_above_benign(head: ToxicityHead,
                                                    labelled: Labelled) -> None:
    scores = head.probabilities(labelled.vectors)
    # Stormfront is the hardest (hate without slurs, sentences out of their post): held-out
    # AUC 0.84 over 2,420 rows, 0.77 on these 150
    for dataset, bound in zip(TRAINED_ON, (0.85, 0.85, 0.7), strict=True):
        rows = np.array([d == dataset for d in labelled.datasets])
        assert roc_auc(scores[rows], labelled.toxic[rows]) > bound, dataset


def test_toxic_texts_at_5_percent_raise_the_toxic_rate(
        head: ToxicityHead, arena: Corpus, labelled: Labelled) -> None:
    rng = np.random.default_rng(7)
    toxic = labelled.toxic_rows(INJECTED_FROM)[:WINDOW // 20]  # 50 distinct toxic texts
    benign_vectors, benign_texts = traffic(rng, arena, WINDOW - toxic.size)
    live = window(head, np.vstack([benign_vectors, labelled.vectors[toxic]]),
                  [*benign_texts, *(labelled.texts[i] for i in toxic)])

    verdict = rate_increase(window(head, *traffic(rng, arena, WINDOW)), live)

    assert verdict.sufficient and verdict.increased
    assert verdict.p_value is not None and verdict.p_value < 1e-3
    assert verdict.increase is not None and verdict.increase > 0.02


def test_benign_against_benign_is_not_flagged(head: ToxicityHead, arena: Corpus) -> None:
    rng = np.random.default_rng(8)
    verdicts = [rate_increase(window(head, *traffic(rng, arena, WINDOW)),
                              window(head, *traffic(rng, arena, WINDOW)))
                for _ in range(50)]

    assert all(v.sufficient for v in verdicts)
    assert not any(v.increased for v in verdicts)


def test_too_few_texts_is_insufficient_data(head: ToxicityHead, arena: Corpus) -> None:
    small = window(head, arena.vectors[:29], arena.texts[:29])
    full = window(head, arena.vectors[100:200], arena.texts[100:200])

    verdict = rate_increase(full, small, min_samples=30)

    assert not verdict.sufficient and verdict.increased is None and verdict.p_value is None
    empty = summarise(np.zeros(0), [], threshold=0.5, redact=redact)
    assert not empty.sufficient and empty.toxic_rate is None


def test_summary_has_a_wilson_interval_and_redacted_examples(labelled: Labelled) -> None:
    toxic = [labelled.texts[i] for i in labelled.toxic_rows(INJECTED_FROM)[:4]]
    benign_texts = [str(r["text"]) for r in read_rows("arena_hard_prompts")[:20]]
    texts = [f"{toxic[0]} write to me at jane.doe@example.com", *toxic[1:], *benign_texts]
    scorer = LogisticHeadScorer()  # the real path: LocalEmbedder, then the head

    summary = summarise(scorer.score(texts), texts, threshold=scorer.head.threshold,
                        redact=redact, top_k=len(texts))

    assert summary.n == 24 and summary.toxic_count >= 3
    assert summary.toxic_rate == summary.toxic_count / 24
    assert summary.ci_low is not None and summary.ci_high is not None
    assert 0 < summary.ci_low < summary.toxic_rate < summary.ci_high < 1
    shown = [text for _, text in summary.top_examples]
    assert len(shown) == summary.toxic_count
    assert not any("jane.doe@example.com" in t for t in shown)
    assert any("[EMAIL]" in t for t in shown)


def test_head_fitted_on_another_model_is_a_config_error(head: ToxicityHead) -> None:
    with pytest.raises(ConfigError, match=r"fitted on 'all-MiniLM-L6-v2'.*'another-model'"
                                          r".*use that embedding model"):
        LogisticHeadScorer(head, OtherModelEmbedder())


@pytest.mark.parametrize("content", [None, "{not json", '{"coef": [0.1], "intercept": 0}',
                                     json.dumps({"coef": [], "intercept": 0, "threshold": 0.5,
                                                 "embedding_model": "m"})])
def test_missing_or_corrupt_head_names_the_rebuild_command(
        tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "head.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=r"python -m tools\.train_toxicity"):
        ToxicityHead.load(path)


def test_shipped_head_carries_provenance() -> None:
    raw = json.loads(DEFAULT_HEAD.read_text())
    assert DEFAULT_HEAD.stat().st_size < 50_000
    assert raw["provenance"]["convabuse"]["licence"] == "CC-BY-4.0"
    assert all(m["roc_auc"] > 0.7 for m in raw["held_out"].values())


def test_huggingface_model_that_cannot_load_names_the_fix(tmp_path: Path) -> None:
    scorer = HuggingFaceScorer(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match=r"toxicity\.model: cannot load .*no-such-model.*"
                                          r"hf download.*save_pretrained"):
        scorer.load()


def test_toxic_labels_are_chosen_by_name() -> None:
    assert _toxic_labels(["non-toxic", "toxic"], (), "m") == {"toxic"}
    assert _toxic_labels(["neither", "offensive_language", "hate_speech"], (), "m") == {
        "offensive_language", "hate_speech"}
    assert _toxic_labels(["toxic", "insult", "threat"], (), "m", multi_label=True) == {
        "toxic", "insult", "threat"}
    assert _toxic_labels(["LABEL_0", "LABEL_1"], ["LABEL_1"], "m") == {"LABEL_1"}


@pytest.mark.parametrize(("labels", "wanted", "multi_label", "message"), [
    (["LABEL_0", "LABEL_1"], (), False, "cannot tell which"),
    (["hate", "offensive"], (), False, "cannot tell which"),  # softmax: always sums to 1
    (["neg", "pos"], ("toxic",), False, r"\['toxic'\] are not labels"),
])
def test_ambiguous_or_unknown_labels_are_config_errors(
        labels: list[str], wanted: tuple[str, ...], multi_label: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"toxicity\.toxic_labels: {message}"):
        _toxic_labels(labels, wanted, "some/model", multi_label=multi_label)
