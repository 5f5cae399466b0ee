"""Each call's cached tokens and cost in the store: written, counted, sampled, and read as
null from rows stored before the columns existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from monitor.core.components import CallQuery, WriteBatch
from monitor.core.records import LLMCall
from monitor.store.schema import MIGRATIONS, migrate
from monitor.store.sqlite import SqliteStore

START = 1_800_000_000 * 10**9


def call(i: int, cost: float | None, cached: int | None = None) -> LLMCall:
    return LLMCall(trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", parent_span_id=None,
                   service="shop", provider="openai", request_model="gpt-4o",
                   response_model=None, operation="chat", start_ns=START + i * 10**9,
                   duration_s=1.0, input_tokens=100, output_tokens=10,
                   cached_input_tokens=cached, cost_usd=cost)


def test_costs_are_stored_counted_and_sampled(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "driftwatch.db")
    try:
        store.write(WriteBatch(calls=[call(i, None if i % 4 == 0 else 0.001 * i, cached=i)
                                      for i in range(40)]))
        whole = CallQuery(service="shop")
        counted = store.count(whole, slow_s=10.0)
        priced = [0.001 * i for i in range(40) if i % 4]
        assert (counted.calls, counted.priced) == (40, 30)
        assert counted.usd == pytest.approx(sum(priced))
        assert sorted(store.costs(whole)) == pytest.approx(priced)
        sample = store.costs(CallQuery(service="shop", limit=10, sample=True))
        assert len(sample) == 10 and set(sample) <= set(priced)
        [read] = store.calls(CallQuery(service="shop", limit=1, since_ns=START + 5 * 10**9))
        assert (read.cost_usd, read.cached_input_tokens) == (pytest.approx(0.005), 5)
    finally:
        store.close()


def test_calls_stored_before_the_cost_columns_read_as_unpriced(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:3])  # the schema before issue 12
    conn.execute(
        "INSERT INTO calls (trace_id, span_id, service, operation, start_ns, duration_s, "
        "status, finish_reasons, content_source, convention, received_ns, model) "
        "VALUES (?, ?, 'shop', 'chat', ?, 1.0, 'ok', '[]', 99, 'otel', ?, 'gpt-4o')",
        (bytes(range(16)), bytes(range(8)), START, START))
    conn.close()

    store = SqliteStore(path)
    try:
        [old] = store.calls(CallQuery())
        assert (old.cost_usd, old.cached_input_tokens) == (None, None)
        counted = store.count(CallQuery(), slow_s=10.0)
        assert (counted.calls, counted.priced, counted.usd) == (1, 0, 0.0)
    finally:
        store.close()
