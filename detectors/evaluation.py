"""Evaluation scores of a window against its reference: pure statistics, no store or clock.

Each evaluation is scored (a number, higher is better), labelled, or both. One with a label
*passes* when the label is one of the pass labels (case-insensitive); one without a label
passes when its score is at least the pass threshold; one with neither a label nor a
threshold to hold its score to is left out of the pass rate (its score still counts).

`compare` asks whether the current window is worse than the reference, one-sided, with two
tests: the pass rate (Fisher's exact test) and the score distribution (Mann-Whitney U),
each only when both sides have `min_samples` evaluations it applies to. The smaller p-value
is Bonferroni-corrected for the tests run; `holm` then corrects across the evaluation names
of one segment, so that a segment with many evaluators is no likelier to raise a false
alarm than one with a single evaluator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True, slots=True, kw_only=True)
class Scores:
    """One window's evaluations of one name: `scores` (NaN where none) and `passed` (1, 0,
    or NaN where neither a label nor a score decides)."""

    scores: np.ndarray
    passed: np.ndarray

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def scored(self) -> np.ndarray:
        found: np.ndarray = self.scores[~np.isnan(self.scores)]
        return found

    @property
    def judged(self) -> np.ndarray:
        found: np.ndarray = self.passed[~np.isnan(self.passed)]
        return found

    @property
    def mean_score(self) -> float | None:
        scored = self.scored
        return float(scored.mean()) if len(scored) else None

    @property
    def pass_rate(self) -> float | None:
        judged = self.judged
        return float(judged.mean()) if len(judged) else None


def scores_of(scores: Sequence[float | None], labels: Sequence[str | None], *,
              pass_labels: Sequence[str], pass_threshold: float | None) -> Scores:
    """The window's scores and pass marks, by the pass rule in the module docstring."""
    wanted = {label.casefold() for label in pass_labels}
    values = np.array([np.nan if s is None else s for s in scores], dtype=np.float64)
    passed = np.full(len(values), np.nan)
    for i, label in enumerate(labels):
        if label is not None:
            passed[i] = float(label.casefold() in wanted)
        elif pass_threshold is not None and not np.isnan(values[i]):
            passed[i] = float(values[i] >= pass_threshold)
    return Scores(scores=values, passed=passed)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreDrop:
    """Is the current window worse than the reference? `p_value` None: too few on either
    side for any test (insufficient data)."""

    p_value: float | None = None  # the smaller one-sided p, Bonferroni over the tests run
    p_pass_rate: float | None = None
    p_score: float | None = None
    pass_rate_drop: float | None = None  # reference pass rate minus current
    score_drop: float | None = None  # reference mean score minus current


def compare(current: Scores, reference: Scores, *, min_samples: int) -> ScoreDrop:
    cur_judged, ref_judged = current.judged, reference.judged
    cur_scored, ref_scored = current.scored, reference.scored
    p_pass = p_score = pass_drop = score_drop = None
    if len(cur_judged) >= min_samples and len(ref_judged) >= min_samples:
        cur_pass, ref_pass = int(cur_judged.sum()), int(ref_judged.sum())
        table = [[cur_pass, len(cur_judged) - cur_pass], [ref_pass, len(ref_judged) - ref_pass]]
        # "less": the current window's odds of passing are below the reference's
        p_pass = float(stats.fisher_exact(table, alternative="less").pvalue)
        pass_drop = float(ref_judged.mean() - cur_judged.mean())
    if len(cur_scored) >= min_samples and len(ref_scored) >= min_samples:
        if np.ptp(np.concatenate([cur_scored, ref_scored])) == 0:
            p_score = 1.0  # every score equal: nothing dropped (and U is undefined)
        else:
            p_score = float(stats.mannwhitneyu(cur_scored, ref_scored,
                                               alternative="less").pvalue)
        score_drop = float(ref_scored.mean() - cur_scored.mean())
    tested = [p for p in (p_pass, p_score) if p is not None]
    if not tested:
        return ScoreDrop()
    return ScoreDrop(p_value=min(1.0, min(tested) * len(tested)), p_pass_rate=p_pass,
                     p_score=p_score, pass_rate_drop=pass_drop, score_drop=score_drop)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values of the tested (non-None) ones, in the given order; None stays
    None. Controls the family-wise error rate over the tests, under any dependence."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, p * (len(tested) - rank)))
        adjusted[i] = running
    return adjusted
