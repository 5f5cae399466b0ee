"""Which windows the detectors compare, on a real store: automatic baselines, pins, and the
trailing reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.core.components import WriteBatch
from monitor.core.records import LLMCall, Segment
from monitor.jobs.references import References
from monitor.store.history import Baseline, SqliteHistory
from monitor.store.sqlite import SqliteStore

T0 = 1_700_000_000_000_000_000
MINUTE = 60 * 10**9


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[SqliteStore, SqliteHistory]]:
    store = SqliteStore(tmp_path / "driftwatch.db")
    history = SqliteHistory(tmp_path / "driftwatch.db")
    yield store, history
    history.close()
    store.close()


def calls(n: int, *, start: int, every: int, model: str = "gpt-4o") -> list[LLMCall]:
    return [LLMCall(trace_id=f"{start + i:032x}", span_id=f"{start % 997 + i + 1:016x}",
                    parent_span_id=None, service="bot", provider="openai",
                    request_model=model, response_model=model, operation="chat",
                    start_ns=start + i * every, duration_s=1.0)
            for i in range(n)]


def test_the_automatic_baseline_waits_for_a_full_window_then_never_moves(
        parts: tuple[SqliteStore, SqliteHistory]) -> None:
    store, history = parts
    refs = References(store, history, auto_window_s=3600, auto_min_calls=50)
    store.write(WriteBatch(calls=calls(100, start=T0, every=MINUTE)))
    segment = Segment(service="bot", model=None)
    waiting = refs.baseline(segment, now_ns=T0 + 30 * MINUTE)
    assert isinstance(waiting, str) and "fills" in waiting
    chosen = refs.baseline(segment, now_ns=T0 + 61 * MINUTE)
    assert isinstance(chosen, Baseline)
    assert (chosen.start_ns, chosen.end_ns, chosen.source) == (T0, T0 + 60 * MINUTE, "auto")
    assert refs.baseline(segment, now_ns=T0 + 600 * MINUTE) == chosen


def test_a_slow_segment_stretches_its_baseline_to_the_minimum_calls(
        parts: tuple[SqliteStore, SqliteHistory]) -> None:
    store, history = parts
    refs = References(store, history, auto_window_s=3600, auto_min_calls=50)
    store.write(WriteBatch(calls=calls(60, start=T0, every=5 * MINUTE)))
    chosen = refs.baseline(Segment(service="bot", model=None), now_ns=T0 + 400 * MINUTE)
    assert isinstance(chosen, Baseline)
    assert chosen.end_ns == T0 + 49 * 5 * MINUTE + 1  # just after the 50th call


def test_models_follow_their_services_pin_and_the_current_window_starts_after_it(
        parts: tuple[SqliteStore, SqliteHistory]) -> None:
    store, history = parts
    refs = References(store, history, auto_window_s=3600, auto_min_calls=50)
    store.write(WriteBatch(calls=calls(100, start=T0, every=MINUTE)))
    pinned = history.set_baseline(Baseline(service="bot", model=None, start_ns=T0,
                                           end_ns=T0 + 20 * MINUTE, source="pinned"))
    section = load_config().drift
    now = T0 + 50 * MINUTE
    reference = refs.reference(section, Segment(service="bot", model="gpt-4o"), now)
    assert reference.baseline == pinned
    current = refs.current(section, reference, now)
    assert (current.start_ns, current.end_ns) == (pinned.end_ns, now)


def test_a_trailing_reference_is_the_same_window_earlier(
        parts: tuple[SqliteStore, SqliteHistory]) -> None:
    store, history = parts
    refs = References(store, history, auto_window_s=3600, auto_min_calls=50)
    section = load_config(environ={"DRIFTWATCH_DRIFT__REFERENCE__MODE": "trailing"}).drift
    now = T0 + 3 * 86400 * 10**9
    reference = refs.reference(section, Segment(service="bot", model=None), now)
    assert reference.window is not None and reference.baseline is None
    assert reference.window.end_ns == now - 86400 * 10**9
    assert reference.window.end_ns - reference.window.start_ns == 3600 * 10**9


def test_segments_are_each_service_whole_and_per_model(
        parts: tuple[SqliteStore, SqliteHistory]) -> None:
    store, history = parts
    refs = References(store, history, auto_window_s=3600, auto_min_calls=50)
    store.write(WriteBatch(calls=calls(3, start=T0, every=MINUTE)
                           + calls(3, start=T0 + 10, every=MINUTE, model="claude")))
    assert refs.segments(since_ns=T0) == [
        Segment(service="bot", model=None), Segment(service="bot", model="claude"),
        Segment(service="bot", model="gpt-4o")]
