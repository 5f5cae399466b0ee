"""/api/v1/calls and `driftwatch calls` answer any size page by page, cap what one request
may ask for, and turn times they cannot hold into a 400 naming the parameter."""

from __future__ import annotations

import json
import time

from tests.harness import Daemon, cli, get, raw_request, request

CALLS = 2_300  # several store pages (500 each)


def calls_body(first: int, n: int, now: int) -> bytes:
    spans = [{
        "traceId": f"{1:016x}{i + 1:016x}", "spanId": f"{i + 1:016x}", "name": "chat",
        "kind": 3, "startTimeUnixNano": str(now - (CALLS - i) * 1_000_000),
        "endTimeUnixNano": str(now - (CALLS - i) * 1_000_000 + 200_000_000),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
        ]} for i in range(first, first + n)]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "chat"}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode()


def fill(daemon: Daemon) -> None:
    now = time.time_ns()
    for first in range(0, CALLS, 500):
        status, _, _ = raw_request("POST", daemon.http + "/v1/traces",
                                   calls_body(first, min(500, CALLS - first), now),
                                   {"Content-Type": "application/json"})
        assert status == 200


def calls(daemon: Daemon, query: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    status, body = get(daemon.ops + "/api/v1/calls?" + query)
    return status, json.loads(body)


def test_a_large_answer_streams_complete_in_order_and_the_cap_is_enforced(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon()
    fill(daemon)

    status, answer = calls(daemon, "since=1h&limit=100000")
    assert status == 200
    spans = [c["span_id"] for c in answer["calls"]]
    assert spans == [f"{i + 1:016x}" for i in range(CALLS)]  # every one, oldest first
    assert answer["truncated"] is False and answer["max_limit"] == 100_000

    status, answer = calls(daemon, "since=1h&limit=1000&order=desc")
    assert status == 200 and len(answer["calls"]) == 1000 and answer["truncated"] is True
    assert answer["calls"][0]["span_id"] == f"{CALLS:016x}"  # newest first

    status, answer = calls(daemon, "limit=100001")
    assert status == 400 and answer["error"].startswith("limit: expected 1 to 100000")

    lines = cli("calls", "--config", str(daemon.config_path), "--json", "--limit",
                "5000").stdout.splitlines()
    assert len({json.loads(line)["span_id"] for line in lines}) == CALLS
    table = cli("calls", "--config", str(daemon.config_path), "--limit", "5000").stdout
    assert table.splitlines()[-1] == f"{CALLS} calls"


def test_times_it_cannot_hold_are_a_400_naming_the_parameter(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon()
    for query, parameter in (("since=9999-12-31T00:00:00Z", "since"),
                             ("until=" + "9" * 30, "until"),
                             ("since=-99999999999w", "since"),
                             ("until=0001-01-01T00:00:00%2B14:00", "until"),
                             ("since=yesterday-ish", "since")):
        status, answer = calls(daemon, query)
        assert status == 400, query
        assert answer["error"].startswith(f"{parameter}: "), answer
    status, body = request("POST", daemon.ops + "/api/v1/baselines", json.dumps({
        "service": "chat", "from": "-9999999999d", "to": "-1h"}).encode(),
        {"Content-Type": "application/json"})
    assert status == 400 and json.loads(body)["error"].startswith("from: ")
    assert daemon.alive()
