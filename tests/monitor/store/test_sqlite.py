"""SqliteStore against real files: what is stored, joined, counted, queried and kept."""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.core.components import CallQuery, WriteBatch
from monitor.core.errors import StoreError
from monitor.core.records import (
    CallStatus,
    ContentEvent,
    ContentSource,
    Direction,
    LLMCall,
    Segment,
)
from monitor.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate
from monitor.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[3]
T0 = 1_700_000_000_000_000_000  # a start time, unix ns
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
_span_ids = itertools.count(1)


def call(**fields: Any) -> LLMCall:
    """A provider chat call; every field can be overridden."""
    values: dict[str, Any] = {
        "trace_id": TRACE, "span_id": f"{next(_span_ids):016x}", "parent_span_id": None,
        "service": "support-bot", "provider": "openai", "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06", "operation": "chat", "start_ns": T0,
        "duration_s": 1.25,
    }
    values.update(fields)
    return LLMCall(**values)


def event(target: LLMCall, kind: str, text: str, **fields: Any) -> ContentEvent:
    return ContentEvent(trace_id=target.trace_id, span_id=target.span_id, kind=kind,
                        time_ns=target.start_ns + 1_000, text=text, **fields)


def conversation(target: LLMCall) -> list[ContentEvent]:
    """OTel log events of one exchange: two user turns, two choices."""
    return [
        event(target, "system", "Answer briefly.", seq=0),
        event(target, "user", "Hello?", seq=1),
        event(target, "assistant", "Hi.", seq=2),
        event(target, "user", "What is drift?", seq=3),
        event(target, "choice", "A change in inputs.", seq=4, index=0, finish_reason="stop"),
        event(target, "choice", "Another answer.", seq=5, index=1, finish_reason="length"),
    ]


def stored(store: SqliteStore, **query: Any) -> list[LLMCall]:
    return store.calls(CallQuery(**query))


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "driftwatch.db"


@pytest.fixture
def store(path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(path)
    yield s
    s.close()


# -- calls ------------------------------------------------------------------------------------


def test_every_field_round_trips(store: SqliteStore) -> None:
    full = call(
        parent_span_id="00f067aa0ba902b7", status=CallStatus.ERROR, error_type="RateLimitError",
        input_tokens=12, output_tokens=34, total_tokens=46, streaming=True, ttft_s=0.123456789,
        finish_reasons=("stop", "length"), system_prompt="Sé breve. 🙂", prompt="line 1\nline 2",
        completion="x" * 5_000, content_source=ContentSource.OPENINFERENCE,
        convention="openinference", duration_s=0.1 + 0.2, start_ns=T0 + 123_456_789,
        service_version="1.4.2", variant="prompt-v7")
    bare = call(provider=None, request_model=None, response_model=None, streaming=False,
                start_ns=T0 + 1)
    store.write(WriteBatch(calls=[full, bare]))

    assert stored(store) == [bare, full]


def test_redelivered_span_is_stored_once(store: SqliteStore) -> None:
    first = call()

    assert store.write(WriteBatch(calls=[first])).calls_inserted == 1
    again = store.write(WriteBatch(calls=[first, first, call()]))

    assert (again.calls_inserted, again.duplicates) == (1, 2)
    assert len(stored(store)) == 2


def test_a_large_batch_with_redeliveries_inside_stores_each_call_once(store: SqliteStore) -> None:
    # Over one INSERT statement's worth of rows, with repeats landing in later statements.
    calls = [call(start_ns=T0 + i) for i in range(1_100)]
    result = store.write(WriteBatch(calls=calls + calls[::3]))

    assert (result.calls_inserted, result.duplicates) == (1_100, 367)
    assert stored(store) == calls


def test_calls_are_read_by_service_model_and_time_window(store: SqliteStore) -> None:
    a1 = call(service="a", start_ns=T0)
    a2 = call(service="a", start_ns=T0 + 10, response_model=None, request_model="claude")
    a3 = call(service="a", start_ns=T0 + 20)
    b1 = call(service="b", start_ns=T0 + 5)
    store.write(WriteBatch(calls=[a3, b1, a1, a2]))

    assert stored(store) == [a1, b1, a2, a3]
    assert stored(store, service="a") == [a1, a2, a3]
    assert stored(store, service="a", model="gpt-4o-2024-08-06") == [a1, a3]
    assert stored(store, model="claude") == [a2]
    assert stored(store, since_ns=T0 + 5, until_ns=T0 + 20) == [b1, a2]
    assert stored(store, service="a", newest_first=True, limit=2) == [a3, a2]


def test_calls_are_read_by_service_version_and_variant(store: SqliteStore) -> None:
    old = call(service_version="1.0", variant="v1")
    new = call(service_version="1.1", variant="v2", start_ns=T0 + 1)
    unversioned = call(start_ns=T0 + 2)
    store.write(WriteBatch(calls=[old, new, unversioned]))

    assert stored(store, service_version="1.1") == [new]
    assert stored(store, variant="v1") == [old]
    assert stored(store) == [old, new, unversioned]


def test_a_sample_is_uniform_by_span_id_and_the_same_every_time(store: SqliteStore) -> None:
    calls = [call(span_id=f"{i * 7919 % 1000:016x}", start_ns=T0 + i) for i in range(1000)]
    store.write(WriteBatch(calls=calls))
    sample = stored(store, limit=100, sample=True)
    assert [c.span_id for c in sample] == [c.span_id for c in stored(store, limit=100,
                                                                        sample=True)]
    assert sorted(c.span_id for c in sample) == sorted(c.span_id for c in calls)[:100]
    starts = [c.start_ns for c in sample]
    assert starts == sorted(starts), "a sample is returned in time order"
    assert max(starts) - min(starts) > 800, "a sample spans the window, not its first calls"


def test_only_calls_with_text_in_a_direction_are_read_when_asked(store: SqliteStore) -> None:
    with_prompt = call(prompt="How do I reset my card PIN?", completion=None)
    with_completion = call(prompt=None, completion="Open the app and tap Reset.")
    empty = call(prompt="", completion="")
    store.write(WriteBatch(calls=[with_prompt, with_completion, empty]))
    assert [c.span_id for c in stored(store, with_text=Direction.PROMPT)] == [
        with_prompt.span_id]
    assert [c.span_id for c in stored(store, with_text=Direction.COMPLETION)] == [
        with_completion.span_id]


def test_timings_and_counts_describe_a_window_without_reading_texts(store: SqliteStore) -> None:
    ok = call(duration_s=0.5, ttft_s=0.1, input_tokens=12, output_tokens=40)
    slow = call(duration_s=9.0)
    failed = call(duration_s=2.0, status=CallStatus.ERROR, error_type="RateLimitError")
    late = call(duration_s=1.0, start_ns=T0 + 10**12)
    store.write(WriteBatch(calls=[ok, slow, failed, late]))
    window = CallQuery(since_ns=T0, until_ns=T0 + 10**9)
    timings = store.timings(window)
    assert [(t.duration_s, t.error, t.error_type) for t in timings] == [
        (0.5, False, None), (9.0, False, None), (2.0, True, "RateLimitError")]
    assert (timings[0].ttft_s, timings[0].input_tokens, timings[0].output_tokens) == (0.1, 12, 40)
    counted = store.count(window, slow_s=1.5)
    assert (counted.calls, counted.errors, counted.slow) == (3, 1, 2)


def test_segments_are_the_service_model_pairs_of_counted_calls(store: SqliteStore) -> None:
    wrapper = call(service="a", response_model="framework-model", start_ns=T0 + 50)
    store.write(WriteBatch(calls=[
        call(service="b", start_ns=T0),
        call(service="a", request_model="m2", response_model=None, start_ns=T0 + 100),
        call(service="a", start_ns=T0 + 200),
        call(service="c", request_model=None, response_model=None, start_ns=T0 + 300),
        wrapper,
        call(service="a", parent_span_id=wrapper.span_id, start_ns=T0 + 60),
    ]))

    assert store.segments() == [
        Segment(service="a", model="gpt-4o-2024-08-06"), Segment(service="a", model="m2"),
        Segment(service="b", model="gpt-4o-2024-08-06"), Segment(service="c", model=None)]
    assert store.segments(since_ns=T0 + 150) == [
        Segment(service="a", model="gpt-4o-2024-08-06"), Segment(service="c", model=None)]


# -- wrappers ---------------------------------------------------------------------------------


def framework_and_provider() -> tuple[LLMCall, LLMCall]:
    """A framework span carrying the texts, wrapping the provider span that lacks them."""
    outer = call(operation="chat", provider=None, system_prompt="Answer briefly.",
                 prompt="What is drift?", completion="A change in inputs.",
                 content_source=ContentSource.OPENLLMETRY, convention="openllmetry")
    inner = call(parent_span_id=outer.span_id, start_ns=T0 + 1_000)
    return outer, inner


def with_texts_of(inner: LLMCall, outer: LLMCall) -> LLMCall:
    return inner._replace(
        system_prompt=outer.system_prompt, prompt=outer.prompt,
        completion=outer.completion, content_source=outer.content_source)


def test_wrapper_stored_first_is_marked_when_its_inner_call_arrives(store: SqliteStore) -> None:
    outer, inner = framework_and_provider()

    assert store.write(WriteBatch(calls=[outer])).wrappers == 0
    result = store.write(WriteBatch(calls=[inner]))

    assert (result.calls_inserted, result.wrappers) == (1, 1)
    assert stored(store) == [with_texts_of(inner, outer)]


def test_wrapper_arriving_after_its_inner_call_is_stored_wrapped(store: SqliteStore) -> None:
    outer, inner = framework_and_provider()

    store.write(WriteBatch(calls=[inner]))
    result = store.write(WriteBatch(calls=[outer]))

    assert (result.calls_inserted, result.wrappers) == (1, 1)
    assert stored(store) == [with_texts_of(inner, outer)]
    assert stored(store, include_wrappers=True) == [outer, with_texts_of(inner, outer)]


def test_wrapper_and_inner_call_in_one_batch_count_once(store: SqliteStore) -> None:
    outer, inner = framework_and_provider()

    result = store.write(WriteBatch(calls=[inner, outer]))

    assert (result.calls_inserted, result.wrappers) == (2, 1)
    assert stored(store) == [with_texts_of(inner, outer)]
    assert store.stats().calls == 1


def test_inner_call_keeps_its_own_texts_over_the_wrappers(store: SqliteStore) -> None:
    outer, inner = framework_and_provider()
    inner = inner._replace(completion="Provider's own answer.",
                           content_source=ContentSource.OTEL_ATTRIBUTES)

    store.write(WriteBatch(calls=[outer, inner]))

    assert stored(store) == [inner._replace(
        system_prompt=outer.system_prompt, prompt=outer.prompt)]


def test_texts_reach_the_innermost_call_of_a_chain_arriving_inside_out(
    store: SqliteStore,
) -> None:
    agent, _ = framework_and_provider()
    chain = call(parent_span_id=agent.span_id, start_ns=T0 + 500)
    provider = call(parent_span_id=chain.span_id, start_ns=T0 + 1_000)

    store.write(WriteBatch(calls=[provider]))
    assert store.write(WriteBatch(calls=[chain])).wrappers == 1
    assert store.write(WriteBatch(calls=[agent])).wrappers == 1

    assert stored(store) == [with_texts_of(provider, agent)]


# -- content events ---------------------------------------------------------------------------


def merged_conversation(target: LLMCall) -> LLMCall:
    return target._replace(
        system_prompt="Answer briefly.", prompt="What is drift?",
        completion="A change in inputs.", finish_reasons=("stop", "length"),
        content_source=ContentSource.OTEL_LOG_EVENTS)


def test_events_arriving_before_their_span_are_joined_when_it_arrives(
    store: SqliteStore,
) -> None:
    target = call()

    early = store.write(WriteBatch(events=conversation(target)))
    assert (early.events_pending, early.events_joined) == (6, 0)
    assert store.stats().pending_events == 6
    late = store.write(WriteBatch(calls=[target]))

    assert late.events_joined == 6
    assert stored(store) == [merged_conversation(target)]
    assert store.stats().pending_events == 0


def test_events_arriving_after_their_span_are_joined_to_the_stored_call(
    store: SqliteStore,
) -> None:
    target = call()
    store.write(WriteBatch(calls=[target]))

    result = store.write(WriteBatch(events=conversation(target)))

    assert (result.events_joined, result.events_pending) == (6, 0)
    assert stored(store) == [merged_conversation(target)]


def test_events_split_around_their_span_are_merged_together(store: SqliteStore) -> None:
    target = call()
    events = conversation(target)

    store.write(WriteBatch(events=events[:3]))
    store.write(WriteBatch(calls=[target], events=events[3:]))

    assert stored(store) == [merged_conversation(target)]


def test_pending_events_survive_reopening_the_store(path: Path) -> None:
    target = call()
    with_events = SqliteStore(path)
    with_events.write(WriteBatch(events=conversation(target)))
    with_events.close()

    reopened = SqliteStore(path)
    try:
        assert reopened.stats().pending_events == 6
        assert reopened.write(WriteBatch(calls=[target])).events_joined == 6
        assert stored(reopened) == [merged_conversation(target)]
    finally:
        reopened.close()


def test_expired_pending_events_are_dropped(store: SqliteStore) -> None:
    store.write(WriteBatch(events=conversation(call())))
    cutoff = time.time_ns()
    store.write(WriteBatch(events=conversation(call())[:2]))

    assert store.expire_pending(cutoff) == 6
    assert store.stats().pending_events == 2


# -- retention --------------------------------------------------------------------------------


def test_retention_deletes_only_older_calls_in_batches(store: SqliteStore) -> None:
    cutoff = T0 + 1_000_000
    old = [call(start_ns=T0 + i) for i in range(10 * 7)]
    kept = [call(start_ns=cutoff + i) for i in range(3)]
    store.write(WriteBatch(calls=old[::2] + kept))
    store.write(WriteBatch(calls=old[1::2]))

    assert store.delete_before(cutoff, batch_size=7) == 70
    assert stored(store) == kept
    assert store.stats().calls == 3
    assert store.delete_before(cutoff, batch_size=7) == 0


def test_retention_also_drops_pending_events_received_before_the_cutoff(
    store: SqliteStore,
) -> None:
    store.write(WriteBatch(calls=[call()], events=conversation(call())))

    assert store.delete_before(time.time_ns() + 1, batch_size=4) == 1 + 6
    assert store.stats().pending_events == 0


# -- schema -----------------------------------------------------------------------------------


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version
    finally:
        conn.close()


def test_an_empty_file_is_migrated_to_the_current_schema(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.touch()

    store = SqliteStore(path)
    try:
        assert store.stats().schema_version == SCHEMA_VERSION
    finally:
        store.close()
    assert user_version(path) == SCHEMA_VERSION


def test_a_store_newer_than_the_code_is_refused_and_left_alone(path: Path) -> None:
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()

    with pytest.raises(StoreError, match=rf"version {SCHEMA_VERSION + 5} .*\({SCHEMA_VERSION}\)"):
        SqliteStore(path)
    assert user_version(path) == SCHEMA_VERSION + 5


def test_migrations_apply_only_missing_steps_all_or_nothing(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    v2 = [*MIGRATIONS, ("CREATE TABLE later_table (id INTEGER PRIMARY KEY)",)]
    broken = [*v2, ("CREATE TABLE alerts (id INTEGER)", "CREATE TABLE calls (x)")]

    assert migrate(conn, MIGRATIONS) == SCHEMA_VERSION
    assert migrate(conn, v2) == SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match="already exists"):
        migrate(conn, broken)

    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
    assert "later_table" in tables and "alerts" not in tables
    conn.close()


# -- failures, threads, durability ------------------------------------------------------------


def test_a_failed_write_commits_nothing_and_keeps_earlier_rows(store: SqliteStore) -> None:
    earlier = call()
    store.write(WriteBatch(calls=[earlier]))
    target = call()
    rejected = call(input_tokens=2**64)  # past SQLite's 64-bit integers

    with pytest.raises(StoreError, match="too large"):
        store.write(WriteBatch(calls=[call(), rejected], events=conversation(target)))

    assert stored(store) == [earlier]
    assert store.stats().pending_events == 0
    assert store.write(WriteBatch(calls=[target])).calls_inserted == 1


def test_a_closed_store_refuses_every_operation(store: SqliteStore) -> None:
    store.close()
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.write(WriteBatch(calls=[call()]))
    with pytest.raises(StoreError, match="closed"):
        stored(store)
    with pytest.raises(StoreError, match="closed"):
        store.check_writable()


def test_check_writable_fails_while_another_process_holds_the_lock(path: Path) -> None:
    store = SqliteStore(path, busy_timeout_s=0.05)
    store.check_writable()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            store.check_writable()
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.check_writable()
    store.close()


def test_readers_on_other_threads_see_whole_batches_while_writing(store: SqliteStore) -> None:
    batches, per_batch = 30, 40
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(len(stored(store)))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        for b in range(batches):
            store.write(WriteBatch(calls=[call(start_ns=T0 + b) for _ in range(per_batch)]))
    finally:
        done.set()
        for r in readers:
            r.join()

    assert seen and all(n % per_batch == 0 for n in seen)
    assert len(stored(store)) == batches * per_batch


def durable_calls() -> list[LLMCall]:
    return [call(trace_id=f"{i:032x}", span_id=f"{i:016x}", prompt="p" * 1_000)
            for i in range(1, 501)]


def test_a_committed_batch_survives_the_writer_being_killed(path: Path) -> None:
    child = (
        "import os, signal, sys\n"
        "from monitor.core.components import WriteBatch\n"
        "from monitor.store.sqlite import SqliteStore\n"
        "from tests.monitor.store.test_sqlite import durable_calls\n"
        "store = SqliteStore(__import__('pathlib').Path(sys.argv[1]))\n"
        "store.write(WriteBatch(calls=durable_calls()))\n"
        "print('committed', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", child, str(path)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)

    assert done.stdout == "committed\n", done.stderr
    assert done.returncode == -signal.SIGKILL
    store = SqliteStore(path)
    try:
        assert stored(store) == durable_calls()
    finally:
        store.close()


def test_stats_count_each_call_once_and_survive_reopening(path: Path) -> None:
    outer, inner = framework_and_provider()
    store = SqliteStore(path)
    store.write(WriteBatch(calls=[outer, inner, call()], events=conversation(call())))
    expected = (2, 6, {"rows": 3, "wrapped_calls": 1})
    first = store.stats()
    store.close()

    reopened = SqliteStore(path)
    again = reopened.stats()
    reopened.write(WriteBatch(calls=[call()]))
    after_write = reopened.stats().calls
    reopened.close()

    assert (first.calls, first.pending_events, first.extra) == expected
    assert (again.calls, again.pending_events, again.extra) == expected
    assert after_write == 3
