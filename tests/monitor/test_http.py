"""HttpSender against loopback servers that really answer: it retries what is worth
retrying (no answer, 429, 5xx) after the server's Retry-After or its own backoff, never
longer than the cap, and gives up at once on any other status with an error that says
what the server answered."""

from __future__ import annotations

import email.utils
import json
import threading
import time

import pytest

from monitor.core.http import HttpError, HttpSender, RetryPolicy, SystemClock, retry_after_s
from tests.clocks import WatchedClock
from tests.loopback import Reply, closed_port, scripted

FAST = RetryPolicy(attempts=4, backoff_s=0.05, max_backoff_s=0.4, timeout_s=5)


def test_a_503_with_retry_after_is_retried_once_after_that_delay() -> None:
    clock = WatchedClock()
    sender = HttpSender(RetryPolicy(backoff_s=0.05, max_backoff_s=5), clock=clock)
    with scripted(Reply(503, b"overloaded", {"Retry-After": "1"})) as (url, script):
        response = sender.send_json("POST", url + "/v1/x", {"n": 1})
    assert response.status == 200 and response.json() == {"ok": True}
    (first_at, first), (second_at, second) = script.requests
    assert clock.waits == [1.0] and sender.retries == 1
    assert second_at - first_at >= 1.0
    assert first.body == second.body == b'{"n": 1}'
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["User-Agent"].startswith("driftwatch/")


def test_a_retry_after_date_is_waited_for_too() -> None:
    clock = WatchedClock()
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    with scripted(Reply(429, headers={"Retry-After": when})) as (url, script):
        HttpSender(RetryPolicy(backoff_s=0.05, max_backoff_s=5), clock=clock).request(
            "POST", url, body=b"x")
    [wait] = clock.waits
    assert 0 < wait <= 2
    assert script.requests[1][0] - script.requests[0][0] >= wait


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = 1_445_412_475.0  # Wed, 21 Oct 2015 07:27:55 GMT
    assert retry_after_s("120", now=now) == 120.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 5.0
    assert retry_after_s("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0, "past: now"
    assert retry_after_s("-3", now=now) == 0.0
    for unreadable in (None, "", "soon", "inf", "nan"):
        assert retry_after_s(unreadable, now=now) is None


def test_a_400_is_final_and_says_what_the_server_answered() -> None:
    clock = WatchedClock()
    with (scripted(Reply(400, b'{"error": "no such\n  model"}')) as (url, script),
          pytest.raises(HttpError) as caught):
        HttpSender(FAST, clock=clock).send_json("POST", url + "/v1/embeddings", {})
    error = caught.value
    assert len(script.requests) == 1 and clock.waits == []
    assert (error.status, error.attempts) == (400, 1)
    assert error.excerpt == '{"error": "no such model"}'
    assert str(error) == f'{url} answered 400: {{"error": "no such model"}}'


def test_a_refused_connection_is_retried_with_backoff_then_named() -> None:
    clock = WatchedClock()
    url = f"http://127.0.0.1:{closed_port()}/hook/s3cret"
    with pytest.raises(HttpError) as caught:
        HttpSender(RetryPolicy(attempts=3, backoff_s=0.05, max_backoff_s=1), clock=clock
                   ).request("POST", url, body=b"{}")
    error = caught.value
    assert clock.waits == [0.05, 0.1], "exponential backoff"
    assert (error.status, error.attempts) == (0, 3)
    assert "refused" in error.reason.lower()
    assert str(error).startswith(f"{url.removesuffix('/hook/s3cret')}: no answer (")
    assert str(error).endswith("(after 3 attempts)") and "s3cret" not in str(error)


def test_a_server_that_stays_down_is_tried_attempts_times() -> None:
    clock = WatchedClock()
    with scripted(*[Reply(502)] * 4) as (url, script), pytest.raises(HttpError) as caught:
        HttpSender(FAST, clock=clock).request("GET", url)
    assert len(script.requests) == 4 and caught.value.status == 502
    assert clock.waits == [0.05, 0.1, 0.2]


def test_a_retry_after_over_the_cap_is_capped() -> None:
    clock = WatchedClock()
    with scripted(Reply(503, headers={"Retry-After": "3600"})) as (url, script):
        HttpSender(FAST, clock=clock).request("POST", url, body=b"{}")
    assert clock.waits == [0.4] and len(script.requests) == 2


def test_a_retry_after_over_the_cap_can_end_the_retries_instead() -> None:
    policy = RetryPolicy(backoff_s=0.05, max_backoff_s=0.4, long_retry_after="give_up")
    with (scripted(Reply(429, headers={"Retry-After": "3600"})) as (url, script),
          pytest.raises(HttpError) as caught):
        HttpSender(policy, clock=WatchedClock()).request("POST", url, body=b"{}")
    assert len(script.requests) == 1
    assert (caught.value.status, caught.value.retry_after_s) == (429, 3600.0)


def test_no_retry_starts_past_the_budget() -> None:
    clock = WatchedClock()
    policy = RetryPolicy(attempts=10, backoff_s=0.05, max_backoff_s=5, budget_s=0.5)
    with (scripted(Reply(503, headers={"Retry-After": "1"})) as (url, script),
          pytest.raises(HttpError)):
        HttpSender(policy, clock=clock).request("POST", url, body=b"{}")
    assert clock.waits == [] and len(script.requests) == 1


def test_a_stop_cuts_the_wait_short_and_ends_the_retries() -> None:
    stopping = threading.Event()
    stopping.set()
    with (scripted(Reply(503, headers={"Retry-After": "30"})) as (url, script),
          pytest.raises(HttpError) as caught):
        HttpSender(RetryPolicy(max_backoff_s=60), clock=SystemClock(stopping)).request(
            "POST", url, body=b"{}")
    assert caught.value.status == 503 and len(script.requests) == 1


def test_a_redirect_is_not_followed_so_a_token_stays_with_its_host() -> None:
    with (scripted() as (elsewhere, moved),
          scripted(Reply(302, headers={"Location": elsewhere})) as (url, script),
          pytest.raises(HttpError) as caught):
        HttpSender(FAST, headers={"Authorization": "Bearer t0ken"}).get_json(url)
    assert caught.value.status == 302 and not moved.requests
    assert script.requests[0][1].headers["Authorization"] == "Bearer t0ken"


def test_a_2xx_that_is_not_json_is_an_http_error_when_json_is_asked_for() -> None:
    with (scripted(Reply(200, b"<html>proxy login</html>")) as (url, _),
          pytest.raises(HttpError, match="answered 200: <html>proxy login</html>") as caught):
        HttpSender(FAST).get_json(url)
    assert "not JSON" in caught.value.reason


def test_json_travels_as_ascii_so_a_lone_surrogate_cannot_break_a_request() -> None:
    with scripted() as (url, script):
        HttpSender(FAST).send_json("POST", url, {"text": "caf\u00e9 \ud800"})
    body = script.requests[0][1].body
    assert body.isascii() and json.loads(body) == {"text": "caf\u00e9 \ud800"}


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts: must be at least 1, got: 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="backoff_s: must be between 0 and max_backoff_s"):
        RetryPolicy(backoff_s=60, max_backoff_s=30)
