"""The `evaluation` job: per segment and evaluation name, the window's mean score and pass
rate against the reference, and whether they dropped.

Each run takes the watched segments with calls in the window, and in each the evaluation
names of its window and reference, the `max_names` most frequent (each becomes a result, a
metric label and an alert label). For each name it reads at most `sample_cap` evaluations
per side (the newest), tests for a drop one-sided (`detectors.evaluation.compare`: pass
rate and score, Bonferroni over the two), and corrects across the segment's names (Holm).
A drop is anomalous when the corrected p-value is below `alpha` and, where a pass rate is
measured, it fell by at least `min_drop`. Below `min_samples` evaluations on either side,
or without a reference yet, the answer is insufficient data. The worst-scored calls of the
window are kept as examples, their texts through the configured redaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from detectors.evaluation import ScoreDrop, Scores, compare, holm, scores_of
from monitor.core.components import Store
from monitor.core.records import DetectorResult, Segment
from monitor.jobs.evaluation.config import EvaluationConfig
from monitor.jobs.evaluation.details import DETECTOR, EvaluationDetails, EvaluationExample
from monitor.jobs.references import Reference, References, Window
from monitor.store.history import SqliteHistory

_EXAMPLE_CHARS = 600


class EvaluationJob:
    """The `evaluation` job; `run` is what the scheduler calls."""

    def __init__(self, config: EvaluationConfig, references: References, store: Store,
                 history: SqliteHistory, redact: Callable[[str], str]) -> None:
        self._config = config
        self._references = references
        self._store = store
        self._history = history
        self._redact = redact

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        segments = self._references.segments(now - int(self._config.window * 1e9))
        results = [r for segment in segments for r in self._segment(segment, now)]
        return self._history.record(results)

    def _segment(self, segment: Segment, now: int) -> list[DetectorResult]:
        cfg = self._config
        reference = self._references.reference(cfg, segment, now)
        window = self._references.current(cfg, reference, now)
        names = self._names(segment, window, reference.window)
        current = [self._scores(segment, name, window) for name in names]
        baseline = [self._scores(segment, name, reference.window) if reference.window
                    else None for name in names]
        drops = [compare(cur, ref, min_samples=cfg.min_samples) if ref is not None
                 else ScoreDrop() for cur, ref in zip(current, baseline, strict=True)]
        adjusted = holm([d.p_value for d in drops])
        tested = sum(p is not None for p in adjusted)
        return [self._result(segment, name, reference, window, cur, ref, drop, p, tested, now)
                for name, cur, ref, drop, p
                in zip(names, current, baseline, drops, adjusted, strict=True)]

    def _names(self, segment: Segment, window: Window, reference: Window | None) -> list[str]:
        """The segment's busiest evaluation names, the window's first, then the reference's
        (an evaluator that stopped reporting still shows, with too little data)."""
        store = self._store
        now = store.evaluation_names(segment, window.start_ns, window.end_ns)
        before = (store.evaluation_names(segment, reference.start_ns, reference.end_ns)
                  if reference else {})
        ranked = sorted(now.keys() | before.keys(),
                        key=lambda n: (-now.get(n, 0), -before.get(n, 0), n))
        return ranked[:self._config.max_names]

    def _scores(self, segment: Segment, name: str, window: Window) -> Scores:
        found = self._store.scored_calls(segment, name, window.start_ns, window.end_ns,
                                         limit=self._config.sample_cap)
        return scores_of([s.score for s in found], [s.label for s in found],
                         pass_labels=self._config.pass_labels,
                         pass_threshold=self._config.pass_threshold)

    def _examples(self, segment: Segment, name: str,
                  window: Window) -> tuple[EvaluationExample, ...]:
        if not self._config.top_examples:
            return ()
        worst = self._store.worst_scored(segment, name, window.start_ns, window.end_ns,
                                         pass_labels=self._config.pass_labels,
                                         limit=self._config.top_examples)
        return tuple(EvaluationExample(
            score=w.score, label=w.label, explanation=self._shown(w.explanation),
            prompt=self._shown(w.prompt), completion=self._shown(w.completion),
            trace_id=w.trace_id, span_id=w.span_id) for w in worst)

    def _shown(self, text: str | None) -> str:
        if not text:
            return ""
        text = self._redact(text)
        return text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS - 1] + "…"

    def _result(self, segment: Segment, name: str, reference: Reference, window: Window,
                cur: Scores, ref: Scores | None, drop: ScoreDrop, p_value: float | None,
                tested: int, now: int) -> DetectorResult:
        cfg = self._config
        anomalous = None
        if p_value is not None:
            big_enough = drop.pass_rate_drop is None or drop.pass_rate_drop >= cfg.min_drop
            anomalous = bool(p_value < cfg.alpha and big_enough)
        judged = cur.judged
        details = EvaluationDetails(
            evaluation=name, count=cur.n, mean_score=cur.mean_score, pass_rate=cur.pass_rate,
            passed=int(judged.sum()), judged=len(judged),
            reference_count=ref.n if ref else None,
            reference_mean_score=ref.mean_score if ref else None,
            reference_pass_rate=ref.pass_rate if ref else None,
            pass_rate_drop=drop.pass_rate_drop, score_drop=drop.score_drop,
            p_pass_rate=drop.p_pass_rate, p_score=drop.p_score, names_tested=tested,
            reference=reference.describe(),
            worst_examples=self._examples(segment, name, window) if cur.n else ())
        return DetectorResult(
            detector=DETECTOR, service=segment.service, model=segment.model, direction=None,
            evaluation=name, window_start_ns=window.start_ns, window_end_ns=window.end_ns,
            n_reference=ref.n if ref else 0, n_current=cur.n, statistic=cur.pass_rate,
            p_value=p_value, anomalous=anomalous,
            summary=_summary(segment, name, cur, ref, reference, anomalous, p_value,
                             cfg.min_samples),
            details=details, computed_ns=now)


def _summary(segment: Segment, name: str, cur: Scores, ref: Scores | None,
             reference: Reference, anomalous: bool | None, p_value: float | None,
             min_samples: int) -> str:
    what = f"{name} of {segment.label}"
    now = _measures(cur)
    if anomalous is None:
        why = reference.waiting if ref is None else f"{min_samples} evaluations needed on " \
            "each side"
        return f"{what}: {now}; insufficient data to compare with the reference ({why})"
    verdict = f"{name} scores of {segment.label} dropped" if anomalous else f"no drop in {what}"
    return f"{verdict}: {now}, reference {_measures(ref)} (one-sided p={p_value:.2g})"


def _measures(scores: Scores | None) -> str:
    if scores is None:
        return "none"
    parts = []
    if scores.pass_rate is not None:
        parts.append(f"pass rate {scores.pass_rate:.1%}")
    if scores.mean_score is not None:
        parts.append(f"mean score {scores.mean_score:.3g}")
    return ", ".join(parts or ["no evaluations"]) + f" (n={scores.n})"

