"""Periodic jobs: the only module that imports APScheduler (3.x), so a move to 4.x touches one file.

Every job runs in a worker thread (never on the event loop), at most one instance at a time,
with missed runs coalesced. A failing run is logged once and counted; the next run proceeds.
`run_now` runs a job at once, waiting for a scheduled run of the same job to finish first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import Gauge

from monitor.core.metrics import PREFIX, SelfMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    interval_s: float
    run: Callable[[], Any]  # blocking; runs in a worker thread


class UnknownJob(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no job named {name!r}; jobs are: {', '.join(sorted(known))}")


class JobScheduler:
    def __init__(self, metrics: SelfMetrics) -> None:
        self._metrics = metrics
        self._jobs: dict[str, JobSpec] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self.started_s: float | None = None  # unix time the schedule started
        self.last_success: dict[str, float] = {}  # job -> unix time of its last success
        self.last_duration: dict[str, float] = {}  # job -> seconds its last run took
        self._busy = Gauge(f"{PREFIX}_job_busy_ratio", "Each job's last run time as a share "
                           "of its interval (above 1: runs start late)", ["job_name"],
                           registry=metrics.registry)

    def add(self, spec: JobSpec) -> None:
        self._jobs[spec.name] = spec

    @property
    def names(self) -> list[str]:
        return sorted(self._jobs)

    @property
    def intervals(self) -> dict[str, float]:
        return {name: spec.interval_s for name, spec in self._jobs.items()}

    async def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        for spec in self._jobs.values():
            self._locks[spec.name] = asyncio.Lock()
            scheduler.add_job(
                self._scheduled, "interval", args=[spec.name], id=spec.name, name=spec.name,
                seconds=spec.interval_s, coalesce=True, max_instances=1,
                misfire_grace_time=max(1, int(spec.interval_s)),
            )
        scheduler.start()
        self._scheduler = scheduler
        self.started_s = time.time()
        log.info("scheduled jobs: %s", ", ".join(
            f"{s.name} every {s.interval_s:g}s" for s in self._jobs.values()))

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for lock in self._locks.values():  # let a running job finish
            async with lock:
                pass

    async def run_now(self, name: str) -> Any:
        """Run a job at once and return its result; its exceptions propagate to the caller."""
        if name not in self._jobs:
            raise UnknownJob(name, list(self._jobs))
        return await self._run(name)

    async def _scheduled(self, name: str) -> None:
        try:
            await self._run(name)
        except Exception:
            log.exception("job %r failed; the next run proceeds", name)

    async def _run(self, name: str) -> Any:
        spec = self._jobs[name]
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            began = time.perf_counter()
            try:
                result = await asyncio.to_thread(spec.run)
            except Exception:
                self._metrics.job_runs.labels(name, "error").inc()
                raise
            finally:
                took = self.last_duration[name] = time.perf_counter() - began
                self._metrics.job_duration.labels(name).observe(took)
                self._busy.labels(name).set(took / spec.interval_s)
            self._metrics.job_runs.labels(name, "ok").inc()
            self.last_success[name] = time.time()
            self._metrics.job_last_success.labels(name).set(self.last_success[name])
            return result
