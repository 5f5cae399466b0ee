"""The latency job's SLO burn rates on a real store: exact counts over the SRE workbook's
windows, 5m to 3d, from a per-minute rollup that reads each settled minute once; unknown
past the retention."""

from __future__ import annotations

import itertools
import logging
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from detectors.latency import BURN_WINDOWS_S
from monitor.core.components import CallQuery, WindowCount, WriteBatch
from monitor.core.metrics import SelfMetrics
from monitor.core.records import CallStatus, DetectorResult, LLMCall, Segment
from monitor.daemon import DETECTORS
from monitor.jobs.config import LatencyConfig
from monitor.jobs.latency.details import LatencyDetails
from monitor.jobs.latency.job import LatencyJob
from monitor.jobs.references import References
from monitor.ops.metrics import export_results
from monitor.store.burn_counts import TrailingCounts
from monitor.store.history import SqliteHistory
from monitor.store.sqlite import SqliteStore

NOW = 1_700_000_000_000_000_000  # unix ns
S = 10**9
_span_ids = itertools.count(1)


def calls(age_s: float, n: int, *, failed: int = 0, slow: int = 0,
          model: str = "gpt-4o") -> list[LLMCall]:
    """`n` calls that started `age_s` before NOW; the first `failed` failed, the last `slow`
    took longer than the latency SLO's 10s."""
    return [LLMCall(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id=None, service="chat",
        provider="openai", request_model=model, response_model=model, operation="chat",
        start_ns=NOW - int(age_s * S), duration_s=12.0 if k >= n - slow else 1.0,
        status=CallStatus.ERROR if k < failed else CallStatus.OK,
        error_type="timeout" if k < failed else None)
        for k, i in ((k, next(_span_ids)) for k in range(n))]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "d.db")
    s.write(WriteBatch(calls=[
        *calls(60, 10, failed=5),           # 5m
        *calls(60, 5, model="gpt-4o-mini"),  # 5m, the other model
        *calls(20 * 60, 10),                # 30m
        *calls(90 * 60, 10, slow=1),        # 2h
        *calls(3 * 3600, 10),               # 6h
        *calls(12 * 3600, 10, failed=2),    # 1d
        *calls(2 * 86400, 10, failed=10),   # 3d
        *calls(4 * 86400, 10, failed=10),   # none of them
    ]))
    yield s
    s.close()


def run_job(store: SqliteStore, **job: float) -> list[DetectorResult]:
    history = SqliteHistory(store.path)
    try:
        references = References(store, history, auto_window_s=900, auto_min_calls=30)
        return LatencyJob(LatencyConfig(), references, store, history, **job).run(NOW)
    finally:
        history.close()


def burn_rates(store: SqliteStore, model: str | None, **job: float) -> dict[str, dict[str, float]]:
    [result] = [r for r in run_job(store, **job) if r.model == model]
    return {slo: dict(windows)
            for slo, windows in LatencyDetails.of(result.details).burn_rates.items()}


def test_burn_rates_cover_the_workbooks_windows_from_5m_to_3d(store: SqliteStore) -> None:
    rates = burn_rates(store, "gpt-4o")
    # bad share / error budget: 1% for availability, 5% for latency
    assert rates["availability"] == pytest.approx({
        "5m": 5 / 10 / 0.01, "30m": 5 / 20 / 0.01, "1h": 5 / 20 / 0.01,
        "2h": 5 / 30 / 0.01, "6h": 5 / 40 / 0.01, "1d": 7 / 50 / 0.01, "3d": 17 / 60 / 0.01})
    assert rates["latency"] == pytest.approx({
        "5m": 0.0, "30m": 0.0, "1h": 0.0, "2h": 1 / 30 / 0.05, "6h": 1 / 40 / 0.05,
        "1d": 1 / 50 / 0.05, "3d": 1 / 60 / 0.05})


def test_the_whole_service_counts_every_model(store: SqliteStore) -> None:
    rates = burn_rates(store, None)
    assert rates["availability"]["5m"] == pytest.approx(5 / 15 / 0.01)
    assert rates["availability"]["3d"] == pytest.approx(17 / 65 / 0.01)


def test_a_window_longer_than_the_retention_is_unknown(
        store: SqliteStore, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="monitor.jobs.latency"):
        rates = burn_rates(store, "gpt-4o", retention_s=86400)
    assert rates["availability"]["3d"] is None and rates["latency"]["3d"] is None, \
        "a 3d window holding only a day of calls would understate a slow burn"
    assert rates["availability"]["1d"] == pytest.approx(7 / 50 / 0.01)
    assert "shorter than the 3d burn-rate window(s)" in caplog.text


def test_metrics_show_every_known_window_and_no_unknown_one(store: SqliteStore) -> None:
    results = run_job(store, retention_s=86400)
    metrics = SelfMetrics()
    export_results(metrics, lambda: results, lambda: [], DETECTORS)
    text = metrics.exposition().decode()
    exported = set(re.findall(r'driftwatch_slo_burn_rate\{model="gpt-4o",service="chat",'
                              r'slo="availability",window="(\w+)"\}', text))
    assert exported == {"5m", "30m", "1h", "2h", "6h", "1d"}


def test_an_empty_window_burns_at_an_unknown_rate(store: SqliteStore) -> None:
    quiet = SqliteStore(store.path.with_name("quiet.db"))
    try:
        quiet.write(WriteBatch(calls=calls(3 * 3600, 10)))
        rates = burn_rates(quiet, "gpt-4o")
    finally:
        quiet.close()
    assert [w for w, burn in rates["availability"].items() if burn is None] == \
        ["5m", "30m", "1h", "2h"]


def test_each_trailing_window_counts_from_its_start_up_to_its_end(store: SqliteStore) -> None:
    segment = Segment(service="chat", model="gpt-4o")
    five_min, hour, three_days = 300 * S, 3600 * S, 3 * 86400 * S
    counts = TrailingCounts(store, slow_s=10.0)
    assert counts.counts(segment, NOW, [three_days, five_min, hour, five_min]) == [
        WindowCount(calls=60, errors=17, slow=1),
        WindowCount(calls=10, errors=5, slow=0),
        WindowCount(calls=20, errors=5, slow=0),
        WindowCount(calls=10, errors=5, slow=0)]
    fresh = TrailingCounts(store, slow_s=10.0)
    assert fresh.counts(segment, NOW - 60 * S, [1]) == \
        [WindowCount(calls=0, errors=0, slow=0)], "a call starting at the end is not in"
    assert fresh.counts(segment, NOW - 60 * S + 1, [1]) == \
        [WindowCount(calls=10, errors=5, slow=0)], "a call starting at the start is"
    assert fresh.counts(segment, NOW, []) == []


def brute_force(store: SqliteStore, segment: Segment, now: int,
                windows: list[int]) -> list[WindowCount]:
    return [store.count(CallQuery(service=segment.service, model=segment.model,
                                  since_ns=now - length, until_ns=now), slow_s=10.0)
            for length in windows]


def test_the_minute_rollup_counts_what_the_store_holds_run_after_run(tmp_path: Path) -> None:
    """Calls over 3 days at random times; jobs run at uneven times while calls keep coming
    (each within the settling time of its start): every window equals a direct count."""
    rng = random.Random(7)
    segment = Segment(service="chat", model="gpt-4o")
    windows = [length * S for length in BURN_WINDOWS_S.values()]
    store = SqliteStore(tmp_path / "r.db")
    try:
        store.write(WriteBatch(calls=[
            call_at(NOW - rng.randrange(3 * 86400 * S), failed=rng.random() < 0.1,
                    slow=rng.random() < 0.2) for _ in range(3000)]))
        counts = TrailingCounts(store, slow_s=10.0)
        now = NOW
        for _ in range(25):
            now += rng.randrange(1, 400 * S)
            store.write(WriteBatch(calls=[
                call_at(now - rng.randrange(200 * S), failed=rng.random() < 0.3)
                for _ in range(rng.randrange(30))]))
            assert counts.counts(segment, now, windows) == brute_force(
                store, segment, now, windows)
    finally:
        store.close()


def test_a_backfill_older_than_the_settling_time_is_counted_after_the_rebuild(
        tmp_path: Path) -> None:
    segment = Segment(service="chat", model="gpt-4o")
    day = 86400 * S
    store = SqliteStore(tmp_path / "b.db")
    try:
        store.write(WriteBatch(calls=[call_at(NOW - 3600 * S)]))
        counts = TrailingCounts(store, slow_s=10.0, settle_s=300, rebuild_s=3600)
        assert counts.counts(segment, NOW, [day]) == [WindowCount(calls=1, errors=0, slow=0)]

        store.write(WriteBatch(calls=[call_at(NOW - 7200 * S)]))  # replayed, 2h old

        assert counts.counts(segment, NOW + 60 * S, [day])[0].calls == 1  # not yet
        assert counts.counts(segment, NOW + 3601 * S, [day])[0].calls == 2
    finally:
        store.close()


def call_at(start_ns: int, *, failed: bool = False, slow: bool = False) -> LLMCall:
    i = next(_span_ids)
    return LLMCall(
        trace_id=f"{i:032x}", span_id=f"{i:016x}", parent_span_id=None, service="chat",
        provider="openai", request_model="gpt-4o", response_model="gpt-4o", operation="chat",
        start_ns=start_ns, duration_s=12.0 if slow else 1.0,
        status=CallStatus.ERROR if failed else CallStatus.OK)
