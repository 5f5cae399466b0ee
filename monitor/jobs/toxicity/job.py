"""The `toxicity` job: how toxic prompts and completions are, per segment and window.

For every segment and direction: the mean score, the toxic rate at the threshold with a
Wilson 95% interval, the count, and the most toxic examples (redacted); and whether the
rate rose above the reference's (one-sided Fisher test, Benjamini-Hochberg across the run,
and a minimum rise so that a tiny change on a huge window pages nobody).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from detectors._stats import benjamini_hochberg
from detectors.redact import redact
from detectors.toxicity import (
    EmbeddingScorer,
    RateIncrease,
    Scorer,
    ToxicitySummary,
    rate_increase,
    summarise,
)
from monitor.core.records import DetectorResult, Direction, Segment
from monitor.jobs.config import ToxicityConfig
from monitor.jobs.references import Reference, References, Window
from monitor.jobs.texts import TextSample, TextSampler
from monitor.jobs.toxicity.details import DETECTOR, ToxicExample, ToxicityDetails
from monitor.store.history import SqliteHistory


@dataclass(frozen=True, slots=True, kw_only=True)
class _Case:
    segment: Segment
    direction: Direction
    reference: Reference
    window: Window
    current: ToxicitySummary
    baseline: ToxicitySummary | None
    change: RateIncrease
    sampling_rate: float | None


class ToxicityJob:
    def __init__(self, config: ToxicityConfig, references: References, texts: TextSampler,
                 history: SqliteHistory, scorer: Scorer, *, default_threshold: float,
                 redact: Callable[[str], str] = redact) -> None:
        self._config = config
        self._redact = redact  # the configured redaction of the examples results carry
        self._references = references
        self._texts = texts
        self._history = history
        self._scorer = scorer
        self.threshold = config.threshold or default_threshold

    @property
    def scorer(self) -> Scorer:
        """Its classifier: `driftwatch compare` scores completions with the same one."""
        return self._scorer

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        since = now - int(self._config.window * 1e9)
        cases = [self._case(segment, direction, now)
                 for segment in self._references.segments(since, split_since_ns=since)
                 for direction in Direction]
        # a p-value of 0.0 (an extreme rise underflows) is the strongest evidence, not none
        tested = [(i, p) for i, c in enumerate(cases) if (p := c.change.p_value) is not None]
        bh = benjamini_hochberg([p for _, p in tested], self._config.alpha)
        rejected: dict[int, bool] = dict(zip((i for i, _ in tested), bh, strict=True))
        results = [self._result(c, rejected.get(i), now) for i, c in enumerate(cases)]
        return self._history.record(results)

    def _case(self, segment: Segment, direction: Direction, now: int) -> _Case:
        reference = self._references.reference(self._config, segment, now)
        window = self._references.current(self._config, reference, now)
        cur = self._texts.window(segment, direction, window, self._config.sample_cap)
        current = summarise(self._score(cur), cur.texts, threshold=self.threshold,
                            redact=self._redact, top_k=self._config.top_examples)
        baseline = self._reference(segment.whole, direction, reference)
        change = (rate_increase(baseline, current, alpha=self._config.alpha,
                                min_increase=self._config.min_increase,
                                min_samples=self._config.min_samples)
                  if baseline is not None else RateIncrease(sufficient=False))
        return _Case(segment=segment, direction=direction, reference=reference, window=window,
                     current=current, baseline=baseline, change=change,
                     sampling_rate=cur.sampling_rate)

    def _score(self, sample: TextSample) -> np.ndarray:
        if not sample.texts:
            return np.zeros(0)
        scorer = self._scorer
        if (isinstance(scorer, EmbeddingScorer)
                and scorer.embedding_model == self._texts.embedder.model_id):
            return scorer.score_embeddings(sample.vectors)
        with self._texts.cpu:
            return scorer.score(sample.texts)

    def _reference(self, segment: Segment, direction: Direction,
                   reference: Reference) -> ToxicitySummary | None:
        if reference.window is None:
            return None
        cap = self._config.sample_cap
        if reference.baseline is None:
            sample = self._texts.window(segment, direction, reference.window, cap)
            scores = self._score(sample)
            texts = sample.texts
        else:
            frozen = self._texts.frozen(segment, direction, reference, cap)
            texts = frozen.texts
            if frozen.scorer == self._scorer.name and frozen.scores is not None:
                scores = frozen.scores
            else:
                vectors = frozen.vectors if frozen.vectors is not None else np.zeros((0, 0))
                scores = self._score(TextSample(texts=texts, vectors=vectors))
                self._history.save_sample(segment.service, segment.model, dataclasses.replace(
                    frozen, scorer=self._scorer.name, scores=scores))
        return summarise(np.asarray(scores, dtype=np.float64), texts,
                         threshold=self.threshold, redact=self._redact, top_k=0)

    def _result(self, case: _Case, rejected: bool | None, now: int) -> DetectorResult:
        cur, ref, change = case.current, case.baseline, case.change
        anomalous = None
        if change.sufficient and rejected is not None:
            anomalous = bool(rejected and (change.increase or 0) >= self._config.min_increase)
        details = ToxicityDetails(
            scorer=self._scorer.name, threshold=self.threshold, mean_score=cur.mean_score,
            toxic_rate=cur.toxic_rate, toxic_count=cur.toxic_count, ci_low=cur.ci_low,
            ci_high=cur.ci_high, reference_rate=ref.toxic_rate if ref else None,
            reference_mean_score=ref.mean_score if ref else None, increase=change.increase,
            reference=case.reference.describe(), sampling_rate=case.sampling_rate,
            top_examples=tuple(ToxicExample(score=score, text=text)
                               for score, text in cur.top_examples))
        return DetectorResult(
            detector=DETECTOR, service=case.segment.service, model=case.segment.model,
            direction=case.direction, window_start_ns=case.window.start_ns,
            window_end_ns=case.window.end_ns, n_reference=ref.n if ref else 0,
            n_current=cur.n, statistic=cur.toxic_rate, p_value=change.p_value,
            anomalous=anomalous, summary=_summary(case, anomalous, self._config.min_samples),
            details=details, computed_ns=now, split=case.segment.split)


def _summary(case: _Case, anomalous: bool | None, min_samples: int) -> str:
    what = f"{case.direction.value}s of {case.segment.label}"
    cur, ref = case.current, case.baseline
    if cur.toxic_rate is None:
        return f"insufficient data for {what}: no texts in the window"
    rate = (f"{cur.toxic_rate:.1%} toxic (95% CI {cur.ci_low:.1%}-{cur.ci_high:.1%}, "
            f"n={cur.n})")
    if anomalous is None:
        why = (case.reference.waiting if ref is None
               else f"{min_samples} texts needed on each side")
        return f"{rate} in {what}; insufficient data to compare with the reference ({why})"
    before = f"{ref.toxic_rate:.1%}" if ref and ref.toxic_rate is not None else "?"
    verdict = "toxicity rose" if anomalous else "no rise in toxicity"
    return f"{verdict} in {what}: {rate}, reference {before}"
