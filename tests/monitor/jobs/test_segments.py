"""The detectors watch at most `jobs.max_segments` segments, the busiest, and a burst of new
names neither pushes a busy segment out nor goes unnoticed."""

from __future__ import annotations

import json
import time

from monitor.core.records import Segment
from monitor.jobs.segments import SegmentWatch
from tests.harness import Daemon, cli, get, raw_request

LIMIT = 10


def spans_of(service: str, n: int) -> bytes:
    now = time.time_ns()
    spans = [{
        "traceId": f"{abs(hash(service)) % 16**16:016x}{j + 1:016x}", "spanId": f"{j + 1:016x}",
        "name": "chat", "kind": 3, "startTimeUnixNano": str(now - j * 1_000_000),
        "endTimeUnixNano": str(now - j * 1_000_000 + 500_000_000),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
        ]} for j in range(n)]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode()


def send(daemon: Daemon, service: str, n: int) -> None:
    status, _, _ = raw_request("POST", daemon.http + "/v1/traces", spans_of(service, n),
                               {"Content-Type": "application/json"})
    assert status == 200


def run_latency(daemon: Daemon) -> None:
    status, _, _ = raw_request("POST", daemon.ops + "/api/v1/jobs/latency/run", b"{}",
                               {"Content-Type": "application/json"})
    assert status == 200


def watched(daemon: Daemon) -> set[tuple[str, str | None]]:
    answer = json.loads(get(daemon.ops + "/api/v1/results?detector=latency")[1])
    return {(r["service"], r["model"]) for r in answer["results"]}


def test_a_burst_of_new_services_leaves_the_busy_ones_watched_and_is_reported(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(jobs={"max_segments": LIMIT}, latency={"min_samples": 10})
    busy = [f"busy-{i}" for i in range(3)]  # 3 services x (whole, model) = 6 segments
    for service in busy:
        send(daemon, service, 20)
    run_latency(daemon)
    assert watched(daemon) == {(s, m) for s in busy for m in (None, "gpt-4o-mini")}

    for i in range(50):  # 100 new segments of one call each
        send(daemon, f"tenant-{i}", 1)
    run_latency(daemon)
    run_latency(daemon)

    segments = watched(daemon)
    assert len(segments) == LIMIT
    assert {(s, m) for s in busy for m in (None, "gpt-4o-mini")} <= segments
    assert daemon.metric("driftwatch_segments_unwatched") == 6 + 100 - LIMIT
    status = cli("status", "--ops", daemon.ops).stdout
    assert f"{6 + 100 - LIMIT} segments not watched" in status
    log = daemon.log_path.read_text() if daemon.log_path else ""
    assert log.count("more than jobs.max_segments") == 1


def test_a_watched_segment_gives_way_only_to_a_much_busier_one() -> None:
    watch = SegmentWatch(limit=2)
    a, b, c, d = (Segment(service=s) for s in "abcd")
    assert set(watch.choose({a: 10, b: 5})) == {a, b}
    assert set(watch.choose({a: 10, b: 5, c: 9})) == {a, b}  # not twice as busy as b
    assert watch.counts.unwatched == 1
    assert set(watch.choose({a: 10, b: 5, c: 9, d: 11})) == {a, d}  # d: over twice b's calls
    assert set(watch.choose({a: 10, c: 1})) == {a, c}  # d is gone: its place is free
