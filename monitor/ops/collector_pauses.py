"""The daemon's garbage collector: settled once it has started, and its pauses counted.

Under ingest the daemon allocates a few tracked objects per call (an `LLMCall` is a tuple
subclass, which the collector never untracks) and keeps them queued for about half a
second, so with CPython's default thresholds (700, 10, 10) it ran ~30 young collections a
second and a full one every few seconds that walked the ~116,000 objects of start-up
(configuration, models, libraries). `bench/ingest.py --modes replay --skip-baseline` prints
the pauses per call from the counter below: 3.0-4.3 µs with `settle()` taken out of
`monitor.daemon.serve`, 0.0-0.2 µs with it. Freezing what start-up built moves it out of
every later collection, and a young threshold of 10,000 lets the queue's short-lived
objects die before they are walked. Cycles still get collected; only how often changes.

`driftwatch_gc_pause_seconds_total{generation}` exports the time spent, so a change here
(or a leak that makes collections slow) can be seen, and `driftwatch_gc_frozen_objects` what
start-up froze.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from monitor.core.metrics import PREFIX

YOUNG_THRESHOLD = 10_000  # net allocations between young collections (CPython's: 700)
OLDER_THRESHOLDS = (10, 10)  # CPython's own for the two older generations


def settle() -> int:
    """After start-up: collect once, freeze the survivors out of later collections, and
    raise the young threshold. Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    return gc.get_freeze_count()


class CollectorPauses:
    """Counts the seconds each collection pauses the process, by generation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._seconds = Counter(
            f"{PREFIX}_gc_pause_seconds", "Time the Python garbage collector paused the "
            "daemon process, by generation", ["generation"], registry=registry)
        self._by_generation = [self._seconds.labels(str(g)) for g in range(3)]
        Gauge(f"{PREFIX}_gc_frozen_objects", "Objects built at start-up and frozen out of "
              "garbage collection", registry=registry).set_function(
                  lambda: float(gc.get_freeze_count()))
        self._began = 0.0
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            gc.callbacks.append(self._observe)
            self._installed = True

    def remove(self) -> None:
        if self._installed:
            gc.callbacks.remove(self._observe)
            self._installed = False

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self._by_generation[info["generation"]].inc(time.perf_counter() - self._began)
