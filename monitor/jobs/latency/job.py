"""The `latency` job: traffic, errors and latency per segment, regressions and SLO burn.

Per segment and window: request count and rate, error rate by error type, duration
p50/p90/p95/p99, time to first token p50/p95, output tokens per second and tokens per call
(from a uniform sample of at most `sample_cap` calls; counts are exact). Against the
reference: is the current window significantly slower (one-sided Mann-Whitney U) by at
least `min_ratio` on p95 (bootstrap lower bound)? And the burn rates of the availability and
latency SLOs over the SRE workbook's windows, 5m to 3d, from exact counts the store
aggregates (the calls of three days never come into Python). A window longer than the
store's retention would count only what is left of it, so its burn rate is unknown (None).
Every segment with calls within the longest window is reported, so one that went quiet is
still seen once its short windows are empty, and a burn-rate alert on it resolves.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from detectors.latency import (
    BURN_WINDOWS_S,
    CallColumns,
    LatencyRegression,
    burn_rate,
    regression,
    window_stats,
)
from monitor.core.components import Store
from monitor.core.records import DetectorResult, Segment
from monitor.jobs.config import LatencyConfig
from monitor.jobs.latency.details import DETECTOR, LatencyDetails
from monitor.jobs.references import Reference, References, Window
from monitor.store.burn_counts import TrailingCounts
from monitor.store.history import BaselineSample, SqliteHistory

log = logging.getLogger(__name__)



class LatencyJob:
    """The `latency` job; `run` is what the scheduler calls.

    :param retention_s: the store's retention; a burn window longer than it is reported
        unknown (None), and a warning says so once.
    """

    def __init__(self, config: LatencyConfig, references: References, store: Store,
                 history: SqliteHistory, *, retention_s: float = math.inf) -> None:
        self._config = config
        self._references = references
        self._store = store
        self._history = history
        self._trailing = TrailingCounts(store, slow_s=config.slo.latency_threshold)
        self._burn_windows = {name: length for name, length in BURN_WINDOWS_S.items()
                              if length <= retention_s}
        if beyond := [name for name in BURN_WINDOWS_S if name not in self._burn_windows]:
            log.warning("store.retention (%gs) is shorter than the %s burn-rate window(s): "
                        "their burn rates are reported as unknown", retention_s,
                        ", ".join(beyond))

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        since = now - int(max(self._config.window, *BURN_WINDOWS_S.values()) * 1e9)
        segments = self._references.segments(
            since, split_since_ns=now - int(self._config.window * 1e9))
        self._trailing.forget(segments)
        return self._history.record([self._result(segment, now) for segment in segments])

    def _result(self, segment: Segment, now: int) -> DetectorResult:
        cfg = self._config
        reference = self._references.reference(cfg, segment, now)
        window = self._references.current(cfg, reference, now)
        counted = self._store.count(window.query(segment), slow_s=cfg.slo.latency_threshold)
        timings = self._store.timings(window.query(segment, limit=cfg.sample_cap))
        window_s = (window.end_ns - window.start_ns) / 1e9
        stats = window_stats(CallColumns.from_timings(timings), window_s)
        durations = np.array([t.duration_s for t in timings], dtype=np.float64)
        ref_durations = self._reference_durations(segment.whole, reference)
        if ref_durations is None:
            change = LatencyRegression(sufficient=False)
        else:
            change = regression(ref_durations, durations, alpha=cfg.alpha,
                                min_ratio=cfg.min_ratio, min_samples=cfg.min_samples)
        errors = counted.errors / counted.calls if counted.calls else None
        details = LatencyDetails(
            count=counted.calls,
            rate_per_s=counted.calls / max((window.end_ns - window.start_ns) / 1e9, 1e-9),
            errors=counted.errors, error_rate=errors,
            errors_by_type=_scaled(stats.errors_by_type, counted.errors),
            p50_s=stats.p50_s, p90_s=stats.p90_s, p95_s=stats.p95_s, p99_s=stats.p99_s,
            ttft_p50_s=stats.ttft_p50_s, ttft_p95_s=stats.ttft_p95_s,
            output_tokens_per_s=stats.output_tokens_per_s,
            tokens_per_call=stats.tokens_per_call, reference=reference.describe(),
            reference_p95_s=(float(np.percentile(ref_durations, 95))
                             if ref_durations is not None and ref_durations.size else None),
            p95_ratio=change.p95_ratio,
            p95_ratio_ci=((change.ratio_ci_low, change.ratio_ci_high)
                          if change.sufficient else None),
            # burn rates are the service's (its SLO), not each version's
            burn_rates={} if segment.split else self._burn_rates(segment, now))
        return DetectorResult(
            detector=DETECTOR, service=segment.service, model=segment.model, direction=None,
            window_start_ns=window.start_ns, window_end_ns=window.end_ns,
            n_reference=0 if ref_durations is None else int(ref_durations.size),
            n_current=counted.calls, statistic=change.p95_ratio, p_value=change.p_value,
            anomalous=change.regressed, summary=_summary(segment, details, change, reference),
            details=details, computed_ns=now, split=segment.split)

    def _reference_durations(self, segment: Segment, reference: Reference) -> np.ndarray | None:
        if reference.window is None:
            return None
        baseline = reference.baseline
        if baseline is not None:
            frozen = self._history.sample(segment.service, segment.model, "timings")
            if (frozen is not None and frozen.durations is not None
                    and (frozen.start_ns, frozen.end_ns) == (baseline.start_ns,
                                                             baseline.end_ns)):
                return frozen.durations.astype(np.float64)
        durations = self._durations(segment, reference.window)
        if baseline is not None:
            self._history.save_sample(segment.service, segment.model, BaselineSample(
                kind="timings", start_ns=baseline.start_ns, end_ns=baseline.end_ns,
                durations=durations))
        return durations

    def _durations(self, segment: Segment, window: Window) -> np.ndarray:
        timings = self._store.timings(window.query(segment, limit=self._config.sample_cap))
        return np.array([t.duration_s for t in timings], dtype=np.float64)

    def _burn_rates(self, segment: Segment, now: int) -> dict[str, dict[str, float | None]]:
        """{slo: {window: burn}} for every window, None where unknown."""
        slo = self._config.slo
        counts = dict(zip(self._burn_windows, self._trailing.counts(
            segment, now, [length * 1_000_000_000 for length in self._burn_windows.values()]),
            strict=True))
        out: dict[str, dict[str, float | None]] = {"availability": {}, "latency": {}}
        for name in BURN_WINDOWS_S:
            counted = counts.get(name)
            if counted is None:  # longer than the retention: only part of it is stored
                out["availability"][name] = out["latency"][name] = None
                continue
            out["availability"][name] = burn_rate(counted.calls, counted.errors,
                                                  objective=slo.availability)
            out["latency"][name] = burn_rate(counted.calls, counted.slow,
                                             objective=slo.latency_objective)
        return out


def _scaled(sampled: dict[str, int], total: int) -> dict[str, int]:
    """Error counts by type from the sample, scaled to the exact error total."""
    seen = sum(sampled.values())
    if not seen:
        return {}
    return {kind: round(n * total / seen) for kind, n in sampled.items()}


def _summary(segment: Segment, details: LatencyDetails, change: LatencyRegression,
             reference: Reference) -> str:
    name = segment.label
    if not details.count:
        return f"no calls to {name} in the window"
    head = (f"{name}: {details.count} calls, p95 {details.p95_s or 0.0:.2f}s, "
            f"errors {details.error_rate or 0.0:.1%}")
    if not change.sufficient:
        why = reference.waiting or "too few calls on one side"
        return f"{head}; insufficient data for a regression test ({why})"
    ratio = change.p95_ratio or 0.0
    if change.regressed:
        return f"latency regressed on {head}: p95 x{ratio:.2f} the reference's"
    return f"no latency regression on {head} (p95 x{ratio:.2f} the reference's)"
