"""Call counts over the SLO burn windows (up to 3 days), without re-reading 3 days a minute.

The latency job needs, every run and for every segment, the calls, errors and slow calls of
windows from 5 minutes to 3 days that all end now. Read straight from the store, the 3-day
window costs a scan of 3 days of calls per segment per run: linear in traffic, and at a few
hundred calls a second longer than the job's interval. So the minutes that are over are
counted once each (`Store.minute_counts`) and kept here, per segment; a window is its whole
minutes from this rollup plus, read exactly from the store, the part of a minute at its
start and the minutes not yet settled at its end. The counts are exact for calls that
arrive within `settle_s` of their start; a backfill of older calls is counted once the
rollup is rebuilt, at most `rebuild_s` later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from monitor.core.components import CallQuery, Store, WindowCount
from monitor.core.records import Segment

MINUTE_NS = 60_000_000_000


@dataclass(slots=True)
class _Rollup:
    covered_from: int  # the first minute read into `minutes`
    settled_until: int  # and the one after the last
    built_ns: int
    minutes: dict[int, WindowCount] = field(default_factory=dict)


class TrailingCounts:
    """Counts per window for one job; not shared between threads."""

    def __init__(self, store: Store, *, slow_s: float, settle_s: float = 300.0,
                 rebuild_s: float = 3600.0) -> None:
        self._store = store
        self._slow_s = slow_s
        self._settle_ns = int(settle_s * 1e9)
        self._rebuild_ns = int(rebuild_s * 1e9)
        self._rollups: dict[Segment, _Rollup] = {}

    def counts(self, segment: Segment, now_ns: int,
               windows_ns: Sequence[int]) -> list[WindowCount]:
        """One WindowCount per length, for [now_ns - length, now_ns)."""
        if not windows_ns:
            return []
        settled = (now_ns - self._settle_ns) // MINUTE_NS  # minutes before it are over
        oldest = -(-(now_ns - max(windows_ns)) // MINUTE_NS)  # the first whole minute needed
        rollup = self._rollup(segment, now_ns, settled, oldest)
        tail_start = max(settled * MINUTE_NS, now_ns - max(windows_ns))
        tail = self._count(segment, tail_start, now_ns)
        out = []
        for length in windows_ns:
            start = now_ns - length
            if start >= tail_start:  # inside the unsettled end: read it whole
                out.append(self._count(segment, start, now_ns))
                continue
            first_whole = -(-start // MINUTE_NS)
            head = self._count(segment, start, min(first_whole * MINUTE_NS, tail_start))
            whole = [n for minute, n in rollup.minutes.items()
                     if first_whole <= minute < settled]
            out.append(_sum([head, tail, *whole]))
        return out

    def forget(self, keep: Sequence[Segment]) -> None:
        """Drop the rollups of segments no longer seen."""
        for segment in set(self._rollups) - set(keep):
            del self._rollups[segment]

    def _rollup(self, segment: Segment, now_ns: int, settled: int, oldest: int) -> _Rollup:
        rollup = self._rollups.get(segment)
        if (rollup is None or now_ns - rollup.built_ns > self._rebuild_ns
                or oldest < rollup.covered_from):
            rollup = self._rollups[segment] = _Rollup(
                covered_from=oldest, settled_until=oldest, built_ns=now_ns)
        begin = max(rollup.settled_until, oldest)
        if begin < settled:
            rollup.minutes.update(self._store.minute_counts(
                segment, begin * MINUTE_NS, settled * MINUTE_NS, slow_s=self._slow_s))
            rollup.settled_until = settled
        for minute in [m for m in rollup.minutes if m < oldest]:
            del rollup.minutes[minute]
        return rollup

    def _count(self, segment: Segment, since_ns: int, until_ns: int) -> WindowCount:
        if since_ns >= until_ns:
            return WindowCount(calls=0, errors=0, slow=0)
        return self._store.count(CallQuery.of(segment, since_ns=since_ns, until_ns=until_ns),
                                 slow_s=self._slow_s)


def _sum(counts: Sequence[WindowCount]) -> WindowCount:
    return WindowCount(calls=sum(c.calls for c in counts), errors=sum(c.errors for c in counts),
                       slow=sum(c.slow for c in counts), priced=sum(c.priced for c in counts),
                       usd=sum(c.usd for c in counts))
