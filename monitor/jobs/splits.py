"""Segments split by version: each watched service's newest versions as segments of their own.

With `jobs.split_by` set (`service_version`, `variant` or both), the detectors that honour
it (drift, toxicity, latency) watch, besides each service and its models, the service's
`jobs.max_versions_per_service` newest values of each key among the calls of the window (by
their first call there, so a rollout's new version is always one), each as a segment with
`split` "version=1.4.2" or "variant=t7". Older values fold into the service's own segment,
which holds every call anyway; how many folded is `driftwatch_segment_versions_folded`.
Versions come from the wire, bounded in length at ingest; here in number, so a split adds at
most that many segments (and label sets) per watched service and key.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final, Literal

from monitor.core.components import Store, VersionKey
from monitor.core.records import Segment

SplitKey = Literal["service_version", "variant"]
#: how a split segment names its key: `version=1.4.2`, `variant=t7`
SPLIT_NAMES: Final[dict[VersionKey, str]] = {"service_version": "version", "variant": "variant"}


class VersionSplit:
    """Chooses each service's split segments from the store. Thread-safe."""

    def __init__(self, keys: Iterable[SplitKey], max_per_service: int) -> None:
        if max_per_service < 1:
            raise ValueError(f"jobs.max_versions_per_service: must be at least 1, got: "
                             f"{max_per_service}")
        self.keys: tuple[SplitKey, ...] = tuple(dict.fromkeys(keys))
        self.max_per_service = max_per_service
        self._folded = 0
        self._lock = threading.Lock()

    @property
    def folded(self) -> int:
        """Versions the last listing folded into their service's segment (past the bound)."""
        return self._folded

    def segments(self, store: Store, services: Iterable[str],
                 since_ns: int) -> dict[Segment, int]:
        """The split segments of these services with calls since then, and their calls."""
        found: dict[Segment, int] = {}
        folded = 0
        for service in services:
            for key in self.keys:
                seen = store.values_seen(service, key, since_ns)
                newest = sorted(seen, key=lambda v: (-seen[v].first_ns, v))
                folded += max(0, len(newest) - self.max_per_service)
                for value in newest[:self.max_per_service]:
                    split = f"{SPLIT_NAMES[key]}={value}"
                    found[Segment(service=service, split=split)] = seen[value].calls
        with self._lock:
            self._folded = folded
        return found
