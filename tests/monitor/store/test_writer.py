"""CommitWriter in front of a real SqliteStore: what a group commit does for the requests in
it when one of them cannot be stored."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from monitor.core.components import CallQuery, WriteBatch
from monitor.core.errors import StoreError
from monitor.core.metrics import SelfMetrics
from monitor.store.sqlite import SqliteStore
from monitor.store.writer import CommitWriter
from tests.monitor.store.test_sqlite import call


def test_an_unstorable_request_fails_alone_and_the_rest_of_its_group_is_committed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "calls.db")
    metrics = SelfMetrics()
    writer = CommitWriter(store, metrics, max_items=100, max_bytes=1 << 20, commit_max_items=100,
                          retry_after_s=1.0)
    before = call(prompt="How do I reset my PIN?")
    # A lone surrogate: no UTF-8 holds it, so binding it fails the transaction.
    poison = call(prompt="bad \ud800 text")
    after = call(prompt="Card not arrived")
    # Queued before the writer starts, so all three go into one group commit.
    futures = [writer.offer(WriteBatch(calls=[c])) for c in (before, poison, after)]

    asyncio.run(writer.start())
    assert futures[0].result(timeout=10) is None
    with pytest.raises(StoreError, match="surrogate"):
        futures[1].result(timeout=10)
    assert futures[2].result(timeout=10) is None
    asyncio.run(writer.stop())

    assert sorted(c.prompt for c in store.calls(CallQuery())) == [
        "Card not arrived", "How do I reset my PIN?"]
    assert metrics.registry.get_sample_value(
        "driftwatch_store_errors_total", {"operation": "write"}) == 1
    store.close()
