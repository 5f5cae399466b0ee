"""The `drift` job: embedding drift of prompts and completions for every segment.

One run compares, for every segment active in the current window and both directions, a
uniform sample of the current window's texts with the segment's reference, then decides
all of them together (Benjamini-Hochberg across every test of the run, plus effect gates).
A segment pages (`anomalous`) after k of its last m decisions were drift. When a run finds
drift, it explains it (unless `drift.explain` is off): the clusters whose share moved, with
redacted examples. Every so
often (the `self_check` job) it tests each reference against itself and publishes the
false-alarm rate, so users can see the detector is calibrated on their own traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors._stats import subsample
from detectors.drift import (
    DriftEvaluation,
    DriftSettings,
    decide_all,
    evaluate,
    hysteresis,
    self_check,
)
from detectors.explain import explain
from detectors.redact import redact
from monitor.core.records import DetectorResult, Direction, Segment, SelfCheckRecord
from monitor.jobs.config import DriftConfig
from monitor.jobs.drift.details import (
    DETECTOR,
    Cluster,
    DriftDetails,
    Hysteresis,
    Projection,
    SelfCheck,
    TestOutcome,
)
from monitor.jobs.references import Reference, References, Window
from monitor.jobs.texts import TextSample, TextSampler
from monitor.store.history import SqliteHistory

log = logging.getLogger(__name__)

SELF_CHECK_SPLITS = 20


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Case:
    segment: Segment
    direction: Direction
    reference: Reference
    window: Window
    ref: TextSample | None
    cur: TextSample
    evaluation: DriftEvaluation


class DriftJob:
    def __init__(self, config: DriftConfig, references: References, texts: TextSampler,
                 history: SqliteHistory, *, redact: Callable[[str], str] = redact) -> None:
        self._config = config
        self._redact = redact  # the configured redaction of cluster keywords and examples
        self._references = references
        self._texts = texts
        self._history = history
        self._settings = DriftSettings(
            alpha=config.alpha, permutations=config.permutations,
            min_samples=config.min_samples, max_samples=config.sample_cap,
            min_auc=config.min_auc, min_novel_excess=config.min_novel_excess,
            min_scan_effect=config.min_scan_effect)

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        window_ns = int(self._config.window * 1e9)
        cases = [self._case(segment, direction, now)
                 for segment in self._references.segments(now - window_ns,
                                                           split_since_ns=now - window_ns)
                 for direction in Direction]
        decisions = decide_all([c.evaluation for c in cases], self._settings)
        checks = {(c.service, c.model, c.direction): c for c in self._history.self_checks()}
        results = [self._result(case, decision, now, checks)
                   for case, decision in zip(cases, decisions, strict=True)]
        return self._history.record(results)

    def self_check(self, now_ns: int | None = None) -> list[dict[str, Any]]:
        """The `self_check` job: for every segment and direction with a reference of at
        least twice `min_samples` texts, test random halves of it against each other and
        store the share of splits that would have alarmed (it should stay near alpha)."""
        now = now_ns or time.time_ns()
        window_ns = int(self._config.window * 1e9)
        outcomes = []
        for segment in self._references.segments(now - window_ns):
            reference = self._references.reference(self._config, segment, now)
            for direction in Direction:
                ref = self._texts.reference(segment, direction, reference,
                                            self._config.sample_cap)
                if ref is None or len(ref) < 2 * self._settings.min_samples:
                    continue
                outcome = self_check(ref.vectors, self._settings, splits=SELF_CHECK_SPLITS)
                record = SelfCheckRecord(
                    service=segment.service, model=segment.model, direction=direction,
                    computed_ns=now, splits=outcome.splits,
                    false_alarm_rate=outcome.false_alarm_rate)
                self._history.save_self_check(record)
                outcomes.append({"service": segment.service, "model": segment.model,
                                 "direction": direction.value, "splits": outcome.splits,
                                 "false_alarm_rate": outcome.false_alarm_rate,
                                 "n_reference": len(ref)})
        return outcomes

    def _case(self, segment: Segment, direction: Direction, now: int) -> _Case:
        reference = self._references.reference(self._config, segment, now)
        window = self._references.current(self._config, reference, now)
        cap = self._config.sample_cap
        cur = self._texts.window(segment, direction, window, cap)
        ref = self._texts.reference(segment.whole, direction, reference, cap)
        if ref is None or min(len(ref), len(cur)) < self._settings.min_samples:
            evaluation = DriftEvaluation(n_reference=len(ref) if ref else 0, n_current=len(cur))
        else:
            evaluation = self._evaluate(segment, direction, ref, cur)
        return _Case(segment=segment, direction=direction, reference=reference, window=window,
                     ref=ref, cur=cur, evaluation=evaluation)

    def _evaluate(self, segment: Segment, direction: Direction, ref: TextSample,
                  cur: TextSample) -> DriftEvaluation:
        """One segment's evaluation; vectors the tests cannot use (an embedder that returned
        zeros, say) make that segment's result insufficient data, never the whole run fail."""
        try:
            return evaluate(ref.vectors, cur.vectors, self._settings)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            log.warning("cannot test drift of %ss of %s: %s", direction.value, segment.label,
                        exc)
            return DriftEvaluation(n_reference=len(ref), n_current=len(cur),
                                   reason=f"the embeddings could not be tested ({exc})")

    def _result(self, case: _Case, decision: bool | None, now: int,
                checks: dict[tuple[str, str | None, Direction], SelfCheckRecord],
                ) -> DetectorResult:
        e = case.evaluation
        recent = self._history.recent(detector=DETECTOR, service=case.segment.service,
                                      model=case.segment.model, direction=case.direction,
                                      limit=self._config.hysteresis.m - 1,
                                      split=case.segment.split)
        earlier = [DriftDetails.of(r.details).decision for r in reversed(recent)]
        anomalous = None if decision is None else hysteresis(
            [*earlier, decision], self._config.hysteresis.k, self._config.hysteresis.m)
        check = checks.get((case.segment.service, case.segment.model, case.direction))
        details = DriftDetails(
            decision=decision, reference=case.reference.describe(),
            reference_mode=case.reference.mode,
            hysteresis=Hysteresis(k=self._config.hysteresis.k, m=self._config.hysteresis.m,
                                  drift_in_window=sum(1 for d in [*earlier, decision]
                                                      if d is True)),
            alpha=self._settings.alpha,
            tests={t.name: TestOutcome(statistic=t.statistic, p_value=t.p_value,
                                       effect=t.effect) for t in e.tests},
            classifier_auc=e.classifier_auc, centroid_distance=e.centroid_distance,
            clusters=self._explain(case) if decision and self._config.explain else (),
            projection=(projection(case.ref.vectors, case.cur.vectors)
                        if e.sufficient and case.ref is not None else None),
            self_check=None if check is None else SelfCheck(
                false_alarm_rate=check.false_alarm_rate, splits=check.splits,
                computed_ns=check.computed_ns),
            sampling_rate=case.cur.sampling_rate)
        p_values = [t.p_value for t in e.tests]
        return DetectorResult(
            detector=DETECTOR, service=case.segment.service, model=case.segment.model,
            direction=case.direction, window_start_ns=case.window.start_ns,
            window_end_ns=case.window.end_ns, n_reference=e.n_reference,
            n_current=e.n_current,
            statistic=e.mmd.statistic if e.mmd else None,
            p_value=min(p_values) if p_values else None, anomalous=anomalous,
            summary=_summary(case, decision, anomalous, details, self._settings),
            details=details, computed_ns=now, split=case.segment.split)

    def _explain(self, case: _Case) -> tuple[Cluster, ...]:
        if case.ref is None:
            return ()
        try:
            shifts = explain(case.ref.vectors, case.cur.vectors, case.ref.texts,
                             case.cur.texts, max_samples=self._config.sample_cap,
                             redact=self._redact)
        except ValueError as exc:
            log.warning("cannot explain drift of %s: %s", case.segment.label, exc)
            return ()
        return tuple(Cluster.from_json(s.to_json()) for s in shifts[:5])


def projection(reference: np.ndarray, current: np.ndarray, *, per_side: int = 300,
               seed: int = 0) -> Projection:
    """A 2-D picture of both windows for the report page: up to `per_side` rows of each,
    projected on the first two principal components of the pooled rows."""
    rng = np.random.default_rng(seed)
    ref = reference[subsample(len(reference), per_side, rng)]
    cur = current[subsample(len(current), per_side, rng)]
    pooled = np.vstack([ref, cur]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    points = np.round(centred @ components[:2].T, 4).tolist()
    return Projection(reference=tuple((x, y) for x, y in points[:len(ref)]),
                      current=tuple((x, y) for x, y in points[len(ref):]))


def _summary(case: _Case, decision: bool | None, anomalous: bool | None,
             details: DriftDetails, settings: DriftSettings) -> str:
    what = f"{case.direction.value}s of {case.segment.label}"
    e = case.evaluation
    if decision is None:
        if e.reason is not None:
            return f"insufficient data for {what}: {e.reason}"
        if case.ref is None:
            return f"insufficient data for {what}: no reference yet ({case.reference.waiting})"
        return (f"insufficient data for {what}: {e.n_current} current and {e.n_reference} "
                f"reference texts, {settings.min_samples} needed on each side")
    auc = f"classifier AUC {e.classifier_auc:.2f}" if e.classifier_auc is not None else ""
    novelty = e.novelty
    novel = f", {novelty.statistic:.0%} novel texts" if novelty is not None else ""
    if not decision:
        why = f"{e.reason}; " if e.reason is not None else ""
        return f"no drift in {what} ({why}{auc}{novel}; n={e.n_reference} vs {e.n_current})"
    moved = ""
    if details.clusters:
        top = details.clusters[0]
        words = ", ".join(top.keywords[:3])
        moved = (f"; a cluster ({words}) went from {top.share_reference:.0%} to "
                 f"{top.share_current:.0%}")
    state = "drift" if anomalous else "drift (not yet alerting: hysteresis)"
    return f"{state} in {what}: {auc}{novel}{moved}"
