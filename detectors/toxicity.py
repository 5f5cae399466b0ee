"""Toxicity of prompts and completions: scorers that turn texts into probabilities, and the
pure statistics the detector reports per segment, direction and window.

Scorers:
    Scorer                  texts -> one probability in [0, 1] per text
    └── EmbeddingScorer     also scores sentence embeddings, so the daemon reuses the vectors
        │                   it computed for drift instead of embedding twice
        └── LogisticHeadScorer   the default: a logistic head on all-MiniLM-L6-v2 embeddings,
                                 shipped as toxicity_head.json (see tools/train_toxicity.py)
    HuggingFaceScorer       any local text-classification model (transformers, optional)

Statistics: `summarise` (mean score, toxic rate with a Wilson interval, top examples through
a redactor) and `rate_increase` (is the current toxic rate above the reference?).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from detectors._stats import wilson_interval
from detectors.embedder import Embedder, LocalEmbedder
from monitor.core.errors import ConfigError, DetectorError

DEFAULT_HEAD = Path(__file__).with_name("toxicity_head.json")
_TOXIC_WORDS = ("toxic", "hate", "offensive", "abusive", "abuse", "insult", "obscene",
                "threat", "harass", "profan", "identity_attack", "sexual_explicit")
_NEGATIONS = ("non", "not", "no_", "no-", "no ")


class Scorer(ABC):
    """Texts in, one toxicity probability in [0, 1] per text out (blocking, CPU-heavy)."""

    #: names the scorer in results and logs
    name: str

    @abstractmethod
    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts),), float64. :raises DetectorError: the model failed."""

    def load(self) -> None:  # noqa: B027 - optional hook, like Embedder.load
        """Load the model now (at start-up) so a bad config fails early and clearly.

        :raises ConfigError: the model cannot be loaded; the message names the fix.
        """


class EmbeddingScorer(Scorer):
    """A scorer of sentence embeddings made by the model named `embedding_model`."""

    embedding_model: str

    @abstractmethod
    def score_embeddings(self, vectors: np.ndarray) -> np.ndarray:
        """Shape (len(vectors),). :raises DetectorError: the vectors have the wrong width."""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ToxicityHead:
    """Logistic-regression weights over L2-normalised embeddings, and a suggested cut-off."""

    coef: np.ndarray
    intercept: float
    embedding_model: str
    threshold: float

    @classmethod
    def load(cls, path: Path = DEFAULT_HEAD) -> ToxicityHead:
        """:raises ConfigError: the file is missing or not a head written by train_toxicity."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            head = cls(coef=np.asarray(raw["coef"], dtype=np.float64),
                       intercept=float(raw["intercept"]),
                       embedding_model=str(raw["embedding_model"]),
                       threshold=float(raw["threshold"]))
            head._check()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"toxicity.head: cannot read {str(path)!r} ({exc}); rebuild it "
                              "with `python -m tools.train_toxicity`") from None
        return head

    def _check(self) -> None:
        if self.coef.ndim != 1 or self.coef.size == 0 or not np.isfinite(self.coef).all():
            raise ValueError(f"coef must be a non-empty list of finite numbers, got shape "
                             f"{self.coef.shape}")
        if not np.isfinite(self.intercept):
            raise ValueError(f"intercept must be finite, got: {self.intercept}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got: {self.threshold}")

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        if vectors.ndim != 2 or vectors.shape[1] != self.coef.size:
            raise DetectorError(f"toxicity head expects {self.coef.size}-wide vectors from "
                                f"{self.embedding_model}, got shape {vectors.shape}")
        logits = vectors.astype(np.float64) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-logits)))


class LogisticHeadScorer(EmbeddingScorer):
    """The default scorer: offline, no download, about 10 KB of weights on top of MiniLM."""

    def __init__(self, head: ToxicityHead | None = None,
                 embedder: Embedder | None = None) -> None:
        self.head = head or ToxicityHead.load()
        self.embedding_model = self.head.embedding_model
        self.name = f"logistic-head:{self.embedding_model}"
        self._embedder = embedder or LocalEmbedder(self.head.embedding_model)
        if _canonical(self._embedder.model_id) != _canonical(self.embedding_model):
            raise ConfigError(f"toxicity: the head was fitted on {self.embedding_model!r} "
                              f"embeddings but the embedder is {self._embedder.model_id!r}; "
                              "use that embedding model or a HuggingFaceScorer")

    def load(self) -> None:
        self._embedder.load()

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.score_embeddings(self._embedder.embed(texts))

    def score_embeddings(self, vectors: np.ndarray) -> np.ndarray:
        return self.head.probabilities(vectors)


class HuggingFaceScorer(Scorer):
    """A transformers "text-classification" model by local path or cached hub name.

    The probability of toxicity is the summed probability of the toxic labels (softmax
    models) or the highest of them (multi-label sigmoid models). Toxic labels are those
    named in `toxic_labels`, else every label whose name says toxic/hate/offensive/...
    and does not start with a negation ("non-toxic", "not_hate").
    """

    def __init__(self, model: str, *, toxic_labels: Sequence[str] = (),
                 batch_size: int = 16) -> None:
        self.model = model
        self.name = f"huggingface:{model}"
        self._wanted = tuple(toxic_labels)
        self._batch_size = batch_size
        self._pipeline: Any = None
        self._toxic: frozenset[str] = frozenset()
        self._multi_label = False

    def load(self) -> None:
        if self._pipeline is not None:
            return
        try:
            from transformers import pipeline
        except ImportError:
            raise ConfigError("toxicity.model: transformers is not installed; install it with "
                              "`pip install 'driftwatch[torch]'` (PyTorch CPU first), or "
                              "leave toxicity.model unset for the built-in head") from None
        try:
            classifier = pipeline("text-classification", model=self.model, top_k=None,
                                  device="cpu")
        except Exception as exc:  # transformers raises OSError, ValueError, EnvironmentError…
            raise ConfigError(
                f"toxicity.model: cannot load {self.model!r} offline ({exc}). On a machine "
                f"with network, run `hf download {self.model}` and copy the "
                "Hugging Face cache here, or save the model and tokenizer with "
                "save_pretrained() and set toxicity.model to that local directory") from None
        config = classifier.model.config
        labels = [str(v) for v in (config.id2label or {}).values()]
        self._multi_label = (config.problem_type == "multi_label_classification"
                             or len(labels) == 1)
        self._toxic = _toxic_labels(labels, self._wanted, self.model,
                                    multi_label=self._multi_label)
        self._pipeline = classifier

    def score(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        self.load()
        try:
            outputs = self._pipeline(list(texts), batch_size=self._batch_size, truncation=True)
        except Exception as exc:
            raise DetectorError(f"{self.name} failed: {exc}") from None
        combine = max if self._multi_label else sum
        toxic = [combine([p["score"] for p in out if p["label"] in self._toxic] or [0.0])
                 for out in outputs]
        return np.clip(np.asarray(toxic, dtype=np.float64), 0.0, 1.0)


def _canonical(model: str) -> str:
    """"all-MiniLM-L6-v2" and "sentence-transformers/all-MiniLM-L6-v2" are one model."""
    return model.removeprefix("sentence-transformers/")


def _toxic_labels(labels: Sequence[str], wanted: Sequence[str], model: str, *,
                  multi_label: bool = False) -> frozenset[str]:
    """The labels whose probability counts as toxic. Every label of a softmax model being
    toxic is as ambiguous as none: the summed probability would always be 1.

    :raises ConfigError: `wanted` names a label the model lacks, or the names are ambiguous.
    """
    if wanted:
        unknown = sorted(set(wanted) - set(labels))
        if unknown:
            raise ConfigError(f"toxicity.toxic_labels: {unknown} are not labels of {model!r}; "
                              f"it has {labels}")
        return frozenset(wanted)
    if len(labels) == 1:
        return frozenset(labels)
    found = frozenset(label for label in labels
                      if any(w in label.lower() for w in _TOXIC_WORDS)
                      and not label.lower().startswith(_NEGATIONS))
    if not found or (found == frozenset(labels) and not multi_label):
        raise ConfigError(f"toxicity.toxic_labels: cannot tell which of {labels} mean toxic "
                          f"for {model!r}; name them in toxicity.toxic_labels")
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class ToxicitySummary:
    """One window's toxicity. `n == 0` means insufficient data: the statistics are None."""

    n: int
    threshold: float
    toxic_count: int = 0
    mean_score: float | None = None
    toxic_rate: float | None = None
    ci_low: float | None = None  # Wilson 95% interval of toxic_rate
    ci_high: float | None = None
    top_examples: tuple[tuple[float, str], ...] = ()  # (score, redacted text), most toxic first

    @property
    def sufficient(self) -> bool:
        return self.n > 0


def summarise(scores: np.ndarray, texts: Sequence[str], *, threshold: float,
              redact: Callable[[str], str], top_k: int = 3) -> ToxicitySummary:
    """Mean score, share at or above `threshold` with its Wilson interval, and the `top_k`
    highest-scoring texts at or above it, each passed through `redact`."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(texts),):
        raise ValueError(f"need one score per text, got {scores.shape} for {len(texts)} texts")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got: {threshold}")
    outside = scores[~((scores >= 0) & (scores <= 1))]  # NaN fails both comparisons
    if outside.size:
        raise ValueError(f"scores must be probabilities in [0, 1], got: {outside[0]}")
    if scores.size == 0:
        return ToxicitySummary(n=0, threshold=threshold)
    toxic = int(np.count_nonzero(scores >= threshold))
    low, high = wilson_interval(toxic, scores.size)
    order = np.argsort(-scores, kind="stable")[:min(top_k, toxic)]
    return ToxicitySummary(
        n=scores.size, threshold=threshold, toxic_count=toxic,
        mean_score=float(scores.mean()), toxic_rate=toxic / scores.size, ci_low=low,
        ci_high=high, top_examples=tuple((float(scores[i]), redact(texts[i])) for i in order))


@dataclass(frozen=True, slots=True, kw_only=True)
class RateIncrease:
    """Is the current toxic rate above the reference? `sufficient` False = can't say."""

    sufficient: bool
    increase: float | None = None  # current rate - reference rate
    p_value: float | None = None
    increased: bool | None = None


def rate_increase(reference: ToxicitySummary, current: ToxicitySummary, *, alpha: float = 0.01,
                  min_increase: float = 0.02, min_samples: int = 30) -> RateIncrease:
    """One-sided Fisher exact test that the current rate exceeds the reference rate.

    Increased when p < alpha and the rate rose by at least `min_increase` (0.02 = 2 points),
    so a tiny rise on a huge window pages nobody.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got: {alpha}")
    if reference.threshold != current.threshold:
        raise ValueError(f"windows scored at different thresholds: {reference.threshold} "
                         f"and {current.threshold}")
    if min(reference.n, current.n) < max(min_samples, 1):
        return RateIncrease(sufficient=False)
    table = [[current.toxic_count, current.n - current.toxic_count],
             [reference.toxic_count, reference.n - reference.toxic_count]]
    p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    increase = current.toxic_count / current.n - reference.toxic_count / reference.n
    return RateIncrease(sufficient=True, increase=increase, p_value=p_value,
                        increased=bool(p_value < alpha and increase >= min_increase))
