"""Clocks for tests: real ones, that really wait, and say what they were asked to do."""

from __future__ import annotations

import threading

from monitor.core.http import SystemClock


class WatchedClock:
    """The real clock, noting every wait it is asked for."""

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self._real = SystemClock(stopping or threading.Event())
        self.waits: list[float] = []

    def time(self) -> float:
        return self._real.time()

    def monotonic(self) -> float:
        return self._real.monotonic()

    def sleep(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self._real.sleep(seconds)
