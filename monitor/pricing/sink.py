"""Every call priced once, on its way to the store, and the calls left unpriced counted.

The price table is applied here, in the daemon just before the write, rather than in the
extraction workers: the workers stay pure functions of the request body (no config to ship
to every process, and `bench/extract.py` measures extraction alone), a lookup costs a cached
dict hit per call, and the stored `cost_usd` then says what the call cost by the table the
daemon ran with when the call arrived; a price changed later does not rewrite history.
"""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry, Counter

from monitor.core.components import CallSink, Fresh, WriteBatch
from monitor.core.metrics import PREFIX
from monitor.pricing.table import REASONS, PriceTable


class PricedSink:
    """A CallSink that sets each call's `cost_usd` before handing the batch on.

    Calls the store took as new, less wrappers of a call in the same batch (as the GenAI
    metrics count them), are counted by why they have no cost in
    `driftwatch_calls_unpriced_total{reason}`.
    """

    def __init__(self, inner: CallSink, table: PriceTable, registry: CollectorRegistry) -> None:
        self._inner = inner
        self._table = table
        self.unpriced = Counter(
            f"{PREFIX}_calls_unpriced", "LLM calls stored without a cost, by why: no model "
            "name, a model the price table does not know, or token counts missing",
            ["reason"], registry=registry)
        for reason in REASONS:
            self.unpriced.labels(reason)

    async def submit(self, batch: WriteBatch) -> Fresh:
        if not batch.calls:
            return await self._inner.submit(batch)
        priced, reasons = [], []
        for call in batch.calls:
            cost, reason = self._table.priced(call)
            priced.append(call._replace(cost_usd=cost) if cost is not None else call)
            reasons.append(reason)
        # replace, not rebuild: the batch's events and evaluations go on with its calls
        fresh = await self._inner.submit(dataclasses.replace(batch, calls=priced))
        parents = {(c.trace_id, c.parent_span_id) for c in priced if c.parent_span_id}
        for i, (call, reason) in enumerate(zip(priced, reasons, strict=True)):
            if reason is None or (fresh is not None and not fresh[i]):
                continue
            if (call.trace_id, call.span_id) not in parents:
                self.unpriced.labels(reason).inc()
        return fresh
