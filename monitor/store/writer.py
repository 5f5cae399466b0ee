"""The bounded ingest queue and the group-commit writer behind it.

Receivers `submit` what they extracted and wait; one writer thread takes everything queued
(up to `commit_max_items`) and commits it in one transaction, then wakes every waiter. So an
OK to an exporter always means committed, and many concurrent requests share one fsync.
A full queue (by items, or by the bytes of text they hold) refuses at once with
`Overloaded`, so memory stays bounded under any load, however long the prompts. A request
that carried only evaluations, every one of which the store refused (their calls not stored
and `ingest.max_pending_evaluations` already waiting), gets `Overloaded` too, after the
commit: nothing of it was stored, and by the retry its calls may have arrived.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future

from monitor.core.components import Fresh, Store, WriteBatch, WriteResult
from monitor.core.errors import Overloaded, StoreError
from monitor.core.metrics import SelfMetrics

log = logging.getLogger(__name__)

#: what a request whose evaluations were all refused is told: the pending table drains as
#: calls arrive or their evaluations expire, in minutes rather than seconds
PENDING_FULL_RETRY_AFTER_S = 60.0


class CommitWriter:
    """Implements `CallSink`: a bounded queue drained by one thread in group commits."""

    def __init__(
        self, store: Store, metrics: SelfMetrics, *, max_items: int, max_bytes: int,
        commit_max_items: int, retry_after_s: float,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._commit_max = commit_max_items
        self._retry_after_s = retry_after_s
        self._queue: deque[tuple[WriteBatch, Future[Fresh], int]] = deque()
        self._depth = 0
        self._bytes = 0  # of text in the queued batches
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        metrics.watch("ingest_queue_items", "Calls and events waiting for commit",
                      lambda: float(self._depth))
        metrics.watch("ingest_queue_capacity_items", "Ingest queue capacity",
                      lambda: float(self._max_items))
        metrics.watch("ingest_queue_bytes", "Bytes of text in the calls and events waiting "
                      "for commit", lambda: float(self._bytes))
        metrics.watch("ingest_queue_capacity_bytes", "Ingest queue capacity in bytes of text",
                      lambda: float(self._max_bytes))

    @property
    def depth(self) -> int:
        return self._depth

    async def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="commit-writer", daemon=True)
            self._thread.start()

    async def submit(self, batch: WriteBatch) -> Fresh:
        """Queue the batch and return once it is committed: which of its calls were new.

        :raises Overloaded: the queue is full (or closing); nothing was queued.
        :raises StoreError: the commit failed; nothing of this batch was committed.
        """
        return await asyncio.wrap_future(self.offer(batch))

    def offer(self, batch: WriteBatch) -> Future[Fresh]:
        """Queue the batch; the future resolves when it is committed."""
        done: Future[Fresh] = Future()
        size = len(batch)
        if size == 0:
            done.set_result(None)
            return done
        text = batch.text_bytes()
        with self._cond:
            if self._closing:
                raise Overloaded("driftwatch is shutting down", self._retry_after_s)
            # One request larger than the whole queue is still taken when the queue is empty,
            # so a big batch is never refused forever.
            if self._depth and (self._depth + size > self._max_items
                                or self._bytes + text > self._max_bytes):
                raise Overloaded(
                    f"ingest queue full ({self._depth} of {self._max_items} items, "
                    f"{self._bytes / 2**20:.1f} of {self._max_bytes / 2**20:.1f} MiB of text "
                    "waiting)",
                    self._retry_after_s)
            self._queue.append((batch, done, text))
            self._depth += size
            self._bytes += text
            self._cond.notify()
        return done

    async def stop(self) -> None:
        """Refuse new batches, commit everything queued, then end the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                group = self._take()
            self._commit(group)

    def _take(self) -> list[tuple[WriteBatch, Future[Fresh]]]:
        group: list[tuple[WriteBatch, Future[Fresh]]] = []
        items = text = 0
        while self._queue and (not group or items + len(self._queue[0][0]) <= self._commit_max):
            batch, done, size = self._queue.popleft()
            group.append((batch, done))
            items += len(batch)
            text += size
        self._depth -= items
        self._bytes -= text
        return group

    def _commit(self, group: list[tuple[WriteBatch, Future[Fresh]]]) -> None:
        merged = WriteBatch(
            calls=[c for batch, _ in group for c in batch.calls],
            events=[e for batch, _ in group for e in batch.events],
            evaluations=[e for batch, _ in group for e in batch.evaluations],
        )
        began = time.perf_counter()
        try:
            result = self._store.write(merged)
        except StoreError as exc:
            if len(group) > 1:
                # One request's unstorable call must not fail the requests it was grouped
                # with: commit each alone, so only the culprit gets the error.
                log.warning("group commit of %d requests failed (%s); committing them one "
                            "by one", len(group), exc)
                for item in group:
                    self._commit([item])
                return
            self._metrics.store_errors.labels("write").inc()
            log.error("commit of %d items failed: %s", len(merged), exc)
            group[0][1].set_exception(exc)
            return
        self._metrics.commit_duration.observe(time.perf_counter() - began)
        self._metrics.commit_size.observe(len(merged))
        self._count(result)
        at = judged = 0
        refused = set(result.evaluations_refused)
        for batch, done in group:  # each request its own calls' part of the group's marks
            end, first = at + len(batch.calls), judged
            judged += len(batch.evaluations)
            if _all_refused(batch, refused, range(first, judged)):
                done.set_exception(Overloaded(
                    f"{len(batch.evaluations)} evaluation(s) refused: their calls are not "
                    "stored and the most evaluations waiting for theirs "
                    "(ingest.max_pending_evaluations) already are",
                    PENDING_FULL_RETRY_AFTER_S))
            else:
                done.set_result(None if result.fresh is None else result.fresh[at:end])
            at = end

    def _count(self, result: WriteResult) -> None:
        m = self._metrics
        # A wrapper marked now was counted when it was stored: this keeps the total at one per call.
        m.calls_stored.inc(max(0, result.calls_inserted - result.wrappers))
        m.calls_duplicate.inc(result.duplicates)
        m.calls_wrapped.inc(result.wrappers)
        m.events_joined.inc(result.events_joined)
        m.evaluations_joined.inc(result.evaluations_joined)
        if result.evaluations_refused:
            m.evaluations_refused.labels("pending_full").inc(len(result.evaluations_refused))


def _all_refused(batch: WriteBatch, refused: set[int], positions: range) -> bool:
    """Whether the request stored nothing: only evaluations, each refused. One that also
    carried calls or events is answered as committed; its refused evaluations are counted."""
    return (bool(positions) and not batch.calls and not batch.events
            and all(i in refused for i in positions))
