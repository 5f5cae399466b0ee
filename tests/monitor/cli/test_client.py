"""OpsClient against a loopback stand-in for the daemon's ops API: a busy daemon (503 or 429
with Retry-After) is asked again after the delay it gave; a job that failed (500), a bad
request, or a daemon that is not running is reported at once, with what the daemon said."""

from __future__ import annotations

import json

import pytest

from monitor.cli.client import OpsClient, OpsError
from tests.clocks import WatchedClock
from tests.loopback import Reply, closed_port, scripted

RESULTS = Reply(200, b'{"results": []}')


def error(status: int, message: str, **headers: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode(),
                 {"Content-Type": "application/json", **headers})


def test_a_busy_daemon_is_asked_again_after_its_retry_after() -> None:
    busy = error(503, "overloaded", **{"Retry-After": "1"})
    with scripted(busy, default=RESULTS) as (url, script):
        client = OpsClient(url, token="s3cret-token-0123456789", clock=WatchedClock())
        answer = client.get("/api/v1/results", service="chat", detector=None)
    assert answer == {"results": []}
    (first_at, first), (second_at, second) = script.requests
    assert second_at - first_at >= 1.0
    assert first.method == second.method == "GET"
    assert second.path == "/api/v1/results?service=chat"
    assert second.headers["Authorization"] == "Bearer s3cret-token-0123456789"


def test_a_daemon_that_stays_busy_is_named_with_its_message() -> None:
    busy = error(503, "store unavailable: disk full", **{"Retry-After": "0"})
    with scripted(*[busy] * 4) as (url, script), pytest.raises(OpsError) as caught:
        OpsClient(url).post("/api/v1/jobs/drift/run")
    assert len(script.requests) == 4
    assert str(caught.value) == (f"{url} answered 503: store unavailable: disk full "
                                 "(after 4 attempts)")


def test_a_failed_job_is_not_run_again() -> None:
    clock = WatchedClock()
    with (scripted(error(500, "job 'drift' failed: boom")) as (url, script),
          pytest.raises(OpsError, match=r"answered 500: job 'drift' failed: boom$")):
        OpsClient(url, clock=clock).post("/api/v1/jobs/drift/run")
    assert len(script.requests) == 1 and clock.waits == []


def test_a_bad_request_is_reported_at_once_and_a_body_is_sent_as_json() -> None:
    with (scripted(error(400, "from: expected a time, got: 'yesterday'")) as (url, script),
          pytest.raises(OpsError, match="answered 400: from: expected a time")):
        OpsClient(url).post("/api/v1/baselines", {"service": "chat", "from": "yesterday"})
    [(_, request)] = script.requests
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"service": "chat", "from": "yesterday"}


def test_a_daemon_that_is_not_running_is_reported_at_once() -> None:
    clock = WatchedClock()
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(OpsError, match=f"cannot reach the daemon at {url} .*driftwatch run"):
        OpsClient(url, clock=clock).get("/api/v1/alerts")
    assert clock.waits == []
