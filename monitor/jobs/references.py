"""Which calls a detector compares: the segments, each one's current window and reference.

A segment is a service and one of its models, or the whole service (model None), or, with
`jobs.split_by`, one of its versions (`monitor.jobs.splits`), whose reference is its
service's: a rollout's new version is compared with what the service did before. The
current window is the last `window` of call start times. The reference is either

- `baseline`: the segment's pinned window (`driftwatch baseline set`), else its service's
  pinned window, else one chosen automatically: the first full window after the segment's
  first call, stretched until it holds `min_samples` calls. A baseline never moves by itself;
  a current window never overlaps it;
- `trailing`: the same window `offset` earlier.

Windows and baselines go by each call's start time, not by when it arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.core.components import CallQuery, Store
from monitor.core.records import Direction, Segment, rfc3339
from monitor.jobs.config import WindowedConfig
from monitor.jobs.segments import SegmentWatch
from monitor.jobs.splits import VersionSplit
from monitor.store.history import Baseline, SqliteHistory


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """Call start times in [start_ns, end_ns)."""

    start_ns: int
    end_ns: int

    def query(self, segment: Segment, *, with_text: Direction | None = None,
              limit: int | None = None) -> CallQuery:
        """The segment's calls in this window; with a limit, a uniform sample of them."""
        return CallQuery.of(segment, since_ns=self.start_ns, until_ns=self.end_ns,
                            with_text=with_text, limit=limit, sample=limit is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A segment's reference window, or why there is none yet (`window` None)."""

    mode: str  # "baseline" | "trailing"
    window: Window | None
    baseline: Baseline | None = None  # for mode "baseline"
    waiting: str = ""  # why there is no reference yet, a sentence fragment

    def describe(self) -> str:
        if self.window is None:
            return self.waiting
        span = f"{rfc3339(self.window.start_ns)} to {rfc3339(self.window.end_ns)}"
        if self.baseline is not None:
            return f"{self.baseline.source} baseline {span}"
        return f"trailing window {span}"


class References:
    """Resolves segments, windows and references from the store and the history."""

    def __init__(self, store: Store, history: SqliteHistory, *, auto_window_s: float,
                 auto_min_calls: int, watch: SegmentWatch | None = None,
                 split: VersionSplit | None = None) -> None:
        self._store = store
        self._history = history
        self.watch = watch or SegmentWatch()
        self.split = split
        self._auto_window_ns = int(auto_window_s * 1e9)
        self._auto_min_calls = auto_min_calls

    def segments(self, since_ns: int, *, split_since_ns: int | None = None) -> list[Segment]:
        """The watched segments with calls since then (each service as a whole and per
        model; at most `jobs.max_segments`, the busiest kept), ordered by name. With
        `split_since_ns` and `jobs.split_by` set, also the watched services' newest versions
        with calls since `split_since_ns`, each after its service's segments."""
        calls: dict[Segment, int] = {}
        for segment, n in self._store.segment_calls(since_ns).items():
            whole = Segment(service=segment.service, model=None)
            calls[whole] = calls.get(whole, 0) + n
            if segment.model is not None:
                calls[segment] = n
        watched = self.watch.choose(calls)
        if self.split is not None and self.split.keys and split_since_ns is not None:
            services = sorted({s.service for s in watched})
            watched += list(self.split.segments(self._store, services, split_since_ns))
        return sorted(watched, key=lambda s: (s.service, s.model or "", s.split or ""))

    def current(self, section: WindowedConfig, reference: Reference, now_ns: int) -> Window:
        start = now_ns - int(section.window * 1e9)
        if reference.baseline is not None:
            start = max(start, min(reference.baseline.end_ns, now_ns))
        return Window(start_ns=start, end_ns=now_ns)

    def reference(self, section: WindowedConfig, segment: Segment, now_ns: int) -> Reference:
        """The segment's reference: a split segment's is its service's (read it with
        `segment.whole`)."""
        segment = segment.whole
        config = section.reference_for(segment.service, segment.model)
        if config.mode == "trailing":
            offset, window = int(config.offset * 1e9), int(section.window * 1e9)
            return Reference(mode="trailing", window=Window(
                start_ns=now_ns - window - offset, end_ns=now_ns - offset))
        baseline = self.baseline(segment, now_ns)
        if isinstance(baseline, str):
            return Reference(mode="baseline", window=None, waiting=baseline)
        return Reference(mode="baseline", baseline=baseline,
                         window=Window(start_ns=baseline.start_ns, end_ns=baseline.end_ns))

    def baseline(self, segment: Segment, now_ns: int) -> Baseline | str:
        """The segment's baseline, choosing it automatically once its first window is full;
        else a sentence saying what it waits for."""
        own = self._history.baseline(segment.service, segment.model)
        if own is not None:
            return own
        if segment.model is not None:
            service = self._history.baseline(segment.service, None)
            if service is not None and service.source == "pinned":
                return service
        first = self._store.timings(CallQuery(service=segment.service, model=segment.model,
                                              limit=self._auto_min_calls))
        if not first:
            return "no calls yet"
        end = first[0].start_ns + self._auto_window_ns
        if len(first) >= self._auto_min_calls:
            end = max(end, first[-1].start_ns + 1)
        if len(first) < self._auto_min_calls or end > now_ns:
            return (f"the automatic baseline fills until {self._auto_min_calls} calls and "
                    f"{self._auto_window_ns / 1e9:g}s have passed since the first call "
                    f"({len(first)} so far)")
        return self._history.set_baseline(Baseline(
            service=segment.service, model=segment.model, start_ns=first[0].start_ns,
            end_ns=end, source="auto"))
