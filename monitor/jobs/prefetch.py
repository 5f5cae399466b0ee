"""Embedding ahead: sampled texts are embedded as their calls arrive, off the jobs' path.

Each pass reads, per segment the detectors watch, the calls committed since the last pass
that are in the segment's shared sample (monitor/jobs/sampling.py), queues their texts, and
embeds them in round-robin batches across segments, so a segment that floods never starves
the others. A segment's queue is bounded: when it overflows, its oldest texts are dropped
and its sampling rate is lowered one step (fewer samples, never stale results); the step is
given back once its queue drains. The jobs then read vectors from the embedding cache.

A call whose start time precedes the previous pass when it is committed (a late export) is
not read ahead; the job that samples it embeds it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from monitor.core.components import CallQuery, Store
from monitor.core.records import Direction, Segment
from monitor.jobs.sampling import SampleRates, sampled
from monitor.jobs.texts import TextSampler


@dataclass(frozen=True, slots=True, kw_only=True)
class Queued:
    start_ns: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchStats:
    depth: int  # texts waiting, over every segment
    lag_s: float  # age of the oldest waiting call's start; 0 when none waits
    embedded: int  # texts embedded ahead since start


class Prefetcher:
    """One pass per `run` (a scheduled job): read new sampled calls, embed up to `budget`."""

    def __init__(self, store: Store, texts: TextSampler, rates: SampleRates, *, cap: int,
                 per_segment: int = 2_000, batch: int = 32, budget: int = 2_000) -> None:
        self._store = store
        self._texts = texts
        self._rates = rates
        self._cap = cap
        self._per_segment = per_segment
        self._batch = batch
        self._budget = budget
        self._lock = threading.Lock()
        self._queues: dict[Segment, deque[Queued]] = {}
        self._seen_ns: dict[Segment, int] = {}
        self._shed: dict[Segment, int] = {}
        self._embedded = 0

    def run(self, now_ns: int | None = None) -> dict[str, float]:
        now = time.time_ns() if now_ns is None else now_ns
        queued: set[tuple[str, str]] = set()  # a model's calls are in its service's sample too
        for service, model in self._rates.segments():
            self._read(Segment(service=service, model=model), now, queued)
        embedded = self._embed()
        stats = self.stats(now)
        return {"embedded": embedded, "depth": stats.depth, "lag_s": stats.lag_s}

    def stats(self, now_ns: int | None = None) -> PrefetchStats:
        now = time.time_ns() if now_ns is None else now_ns
        with self._lock:
            oldest = [q[0].start_ns for q in self._queues.values() if q]
            return PrefetchStats(depth=sum(len(q) for q in self._queues.values()),
                                 lag_s=(now - min(oldest)) / 1e9 if oldest else 0.0,
                                 embedded=self._embedded)

    def depths(self) -> dict[Segment, int]:
        """Texts waiting, per segment."""
        with self._lock:
            return {segment: len(queue) for segment, queue in self._queues.items()}

    def _read(self, segment: Segment, now: int, queued: set[tuple[str, str]]) -> None:
        since = self._seen_ns.get(segment, now - self._rates.horizon_ns)
        query = sampled(CallQuery(service=segment.service, model=segment.model,
                                  since_ns=since, until_ns=now),
                        self._rates.rate(segment, self._cap, now))
        calls = self._store.calls(query)
        self._seen_ns[segment] = now
        with self._lock:
            queue = self._queues.setdefault(segment, deque())
            for call in calls:
                if (call.trace_id, call.span_id) in queued:
                    continue
                queued.add((call.trace_id, call.span_id))
                for direction in Direction:
                    text = call.prompt if direction is Direction.PROMPT else call.completion
                    if text:
                        queue.append(Queued(start_ns=call.start_ns, text=text))
            overflow = len(queue) - self._per_segment
            if overflow > 0:
                for _ in range(overflow):
                    queue.popleft()
                self._shed[segment] = self._shed.get(segment, 0) + 1
                self._rates.shed(segment, self._shed[segment])

    def _embed(self) -> int:
        done = 0
        while done < self._budget:
            with self._lock:
                batch = [q.popleft().text for q in self._queues.values()
                         for _ in range(min(len(q), max(1, self._batch // max(1, len(
                             self._queues)))))]
            if not batch:
                break
            self._texts.embed(batch)
            done += len(batch)
        with self._lock:
            self._embedded += done
            for segment, queue in self._queues.items():
                if not queue and self._shed.get(segment, 0) > 0:  # drained: give a step back
                    self._shed[segment] -= 1
                    self._rates.shed(segment, self._shed[segment])
        return done
