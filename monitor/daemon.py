"""The composition root: the one place that builds every component from the config and
wires them together. Start order is downstream first (store, writer, then receivers);
stop order is upstream first, so receivers stop taking data, the queue drains to the store,
and only then is the store closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from collectors.ingest import Ingestor
from collectors.otlp_grpc import OtlpGrpcReceiver
from collectors.otlp_http import OtlpHttpReceiver
from monitor import __version__
from monitor.components import Component, Store
from monitor.config import Config
from monitor.metrics import SelfMetrics
from monitor.ops import OpsDeps, OpsServer
from monitor.scheduler import JobScheduler, JobSpec
from monitor.store import SqliteStore
from monitor.writer import CommitWriter

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 8.0


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = SelfMetrics()
        self.store: Store = SqliteStore(config.store.path)
        self._extract_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="extract")
        ingest = config.ingest
        self.writer = CommitWriter(
            self.store, self.metrics, max_items=ingest.queue_max_items,
            commit_max_items=ingest.commit_max_items, retry_after_s=ingest.retry_after)
        ingestor = Ingestor(self.writer, self.metrics, self._extract_pool,
                            max_chars=ingest.max_attribute_chars)
        receivers = config.receivers
        self.receivers: list[OtlpGrpcReceiver | OtlpHttpReceiver] = []
        if receivers.otlp_grpc.enabled:
            self.receivers.append(OtlpGrpcReceiver(
                receivers.otlp_grpc, ingestor, self.metrics, retry_after_s=ingest.retry_after))
        if receivers.otlp_http.enabled:
            self.receivers.append(OtlpHttpReceiver(
                receivers.otlp_http, ingestor, self.metrics,
                max_inflight_bytes=ingest.max_inflight_bytes, retry_after_s=ingest.retry_after))
        self.jobs = JobScheduler(self.metrics)
        self.jobs.add(JobSpec("retention", config.jobs.retention_interval, self._retention))
        self.ops = OpsServer(config.ops, OpsDeps(
            metrics=self.metrics, store=self.store, jobs=self.jobs,
            listeners=tuple(r.listener for r in self.receivers)))
        self.metrics.watch("store_calls", "LLM calls in the store",
                           lambda: float(self.store.stats().calls))
        self._started: list[Component] = []

    def _retention(self) -> dict[str, Any]:
        now = time.time_ns()
        cutoff = now - int(self.config.store.retention * 1e9)
        deleted = self.store.delete_before(cutoff, self.config.store.retention_batch)
        expired = self.store.expire_pending(now - int(self.config.ingest.join_window * 1e9))
        self.metrics.retention_deleted.inc(deleted + expired)
        return {"deleted_calls": deleted, "expired_events": expired}

    async def start(self) -> None:
        order: list[Component] = [self.writer, *self.receivers, self.ops, self.jobs]
        for component in order:
            await component.start()
            self._started.append(component)

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %s failed", type(component).__name__)
        self._extract_pool.shutdown(wait=True)
        self.store.close()

    def banner(self) -> str:
        parts = [f"{r.listener.name}={r.address}" for r in self.receivers]
        parts.append(f"ops={self.ops.listener.url}")
        return f"driftwatch {__version__} listening: " + " ".join(parts)


async def serve(config: Config, out: TextIO = sys.stdout) -> int:
    """Run until SIGTERM or SIGINT; return the exit code."""
    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    print(daemon.banner(), file=out, flush=True)
    log.info("store at %s (retention %gs)", config.store.path, config.store.retention)
    await stop.wait()
    log.info("shutting down: refusing new data, draining the queue")
    try:
        await asyncio.wait_for(daemon.stop(), STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown took over %gs; exiting anyway", STOP_TIMEOUT_S)
        return 1
    log.info("stopped")
    return 0
