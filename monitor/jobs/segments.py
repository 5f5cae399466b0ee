"""Which segments the detectors watch: at most `jobs.max_segments`, the busiest first.

Services and models come from the wire, so an app that names a service per tenant would
otherwise make every job run once per tenant. The watched set is sticky: a segment stays
watched while it keeps calls in the window, and a newcomer takes a free place, or the place
of the quietest watched segment only when it has more than `MARGIN` times its calls, so a
burst of new names never pushes a busy segment out. The rest are not watched, and say so:
`driftwatch_segments_unwatched`, the `segments` field of /api/v1/results (a line in
`driftwatch status`) and one log line the first time the set overflows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from monitor.core.records import Segment

log = logging.getLogger(__name__)

DEFAULT_MAX_SEGMENTS: Final = 500
MARGIN: Final = 2.0  # a newcomer displaces a watched segment with over twice its calls


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentCounts:
    """What the last listing watched and left out."""

    watched: int
    unwatched: int
    limit: int

    def to_json(self) -> dict[str, int]:
        return {"watched": self.watched, "unwatched": self.unwatched, "limit": self.limit}


class SegmentWatch:
    """Chooses the watched segments from each listing's call counts. Thread-safe."""

    def __init__(self, limit: int = DEFAULT_MAX_SEGMENTS) -> None:
        if limit < 1:
            raise ValueError(f"jobs.max_segments: must be at least 1, got: {limit}")
        self.limit = limit
        self._watched: set[Segment] = set()
        self._last = SegmentCounts(watched=0, unwatched=0, limit=limit)
        self._overflowed = False
        self._lock = threading.Lock()

    @property
    def counts(self) -> SegmentCounts:
        return self._last

    def choose(self, calls: Mapping[Segment, int]) -> list[Segment]:
        """The segments to watch among those with calls (segment -> calls in the window),
        busiest first."""
        with self._lock:
            kept = {s for s in self._watched if s in calls}  # a segment gone frees its place
            newcomers = sorted((s for s in calls if s not in kept),
                               key=lambda s: (-calls[s], s.service, s.model or ""))
            quietest = sorted(kept, key=lambda s: (calls[s], s.service, s.model or ""))
            for segment in newcomers:
                if len(kept) < self.limit:
                    kept.add(segment)
                elif quietest and calls[segment] > MARGIN * calls[quietest[0]]:
                    kept.discard(quietest.pop(0))
                    kept.add(segment)
                else:
                    break  # newcomers come busiest first: no later one can do better
            self._watched = kept
            self._last = SegmentCounts(watched=len(kept), unwatched=len(calls) - len(kept),
                                       limit=self.limit)
            if self._last.unwatched and not self._overflowed:
                self._overflowed = True
                log.warning("%d segments have calls, more than jobs.max_segments (%d): the "
                            "detectors watch the busiest %d and leave %d unwatched (see "
                            "driftwatch_segments_unwatched)", len(calls), self.limit,
                            len(kept), self._last.unwatched)
        return sorted(kept, key=lambda s: (-calls[s], s.service, s.model or ""))
