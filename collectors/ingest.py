"""The one export path that both OTLP transports call, whatever the wire encoding.

It has the request body decoded and extracted (`collectors.workers`), hands the calls and
content events to the sink, and waits for the commit; it counts every span, log record and
metric point, and reports malformed spans back as partial success instead of failing the
whole request. Calls the store cannot hold (`collectors.bounds`) are refused the same way.
"""

from __future__ import annotations

import time

from collectors.bounds import CallBounds
from collectors.extract import Extracted, Media, Signal
from collectors.workers import ExtractionPool
from monitor.core.components import CallSink, WriteBatch
from monitor.core.metrics import SelfMetrics


class Ingestor:
    """Request bodies in, committed calls out. Shared by the gRPC and HTTP receivers."""

    def __init__(
        self, sink: CallSink, metrics: SelfMetrics, pool: ExtractionPool, *, max_chars: int,
        bounds: CallBounds | None = None, variant_key: str | None = None,
    ) -> None:
        self._sink = sink
        self._metrics = metrics
        self._pool = pool
        self._max_chars = max_chars
        self._variant_key = variant_key  # ingest.variant_attribute
        self._bounds = bounds or CallBounds()

    async def export(self, signal: Signal, body: bytes, media: Media,
                     transport: str) -> Extracted:
        """Decode, extract, commit, count.

        :raises BadRequest: the body does not decode. :raises Overloaded: the queue is full
            or a worker died. :raises StoreError: the commit failed.
        """
        found = await self._pool.extract(signal, body, media, self._max_chars,
                                         self._variant_key)
        if signal == "traces":
            await self._traces(found, transport)
        elif signal == "logs":
            await self._sink.submit(WriteBatch(events=found.events,
                                               evaluations=found.evaluations))
            self._count_evaluations(found)
            genai = len(found.events) + len(found.evaluations) + found.evaluations_refused
            self._metrics.log_records.labels("true").inc(genai)
            self._metrics.log_records.labels("false").inc(found.received - genai)
        else:
            self._metrics.metric_points.inc(found.received)
        return found

    async def _traces(self, found: Extracted, transport: str) -> None:
        m = self._metrics
        m.spans_received.labels(transport).inc(found.received)
        if found.rejected:
            m.spans_refused.labels(transport, "malformed").inc(found.rejected)
        out_of_range = self._bounds.apply(found, time.time_ns())
        if out_of_range:
            m.spans_refused.labels(transport, "out_of_range").inc(out_of_range)
        try:
            await self._sink.submit(WriteBatch(calls=found.calls,
                                               evaluations=found.evaluations))
        except Exception:
            m.spans_refused.labels(transport, "unavailable").inc(found.received - found.rejected)
            raise
        self._count_evaluations(found)
        m.spans_accepted.labels(transport).inc(found.received - found.rejected)
        for kind, n in found.kinds.items():
            m.spans_by_kind.labels(kind).inc(n)

    def _count_evaluations(self, found: Extracted) -> None:
        for evaluation in found.evaluations:
            self._metrics.evaluations_received.labels(evaluation.source).inc()
        if found.evaluations_refused:
            self._metrics.evaluations_refused.labels("invalid").inc(found.evaluations_refused)
