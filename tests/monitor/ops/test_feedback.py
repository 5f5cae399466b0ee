"""`POST /api/v1/feedback` on the real daemon: an app's thumbs up or down, by span ids or by
response id, joined to its call whenever the call arrives; every bad field a 400 that names
it; its own token scope, which may do nothing else; the browser checks of every POST."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, raw_request, request, wait_for

ADMIN, READ, FEEDBACK = ("admin-token-0123456789abc", "read-token-0123456789abcd",
                         "feedback-token-0123456789")
AUTH = {"auth": {"bearer_token": ADMIN, "read": {"bearer_token": READ},
                 "feedback": {"bearer_token": FEEDBACK}}}


def post(daemon: Daemon, body: Any, token: str | None = FEEDBACK,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    status, text = request("POST", daemon.ops + "/api/v1/feedback",
                           json.dumps(body).encode(), sent)
    return status, json.loads(text)


def metric(daemon: Daemon, name: str, **labels: str) -> float:
    """A metric's samples with these labels, added up, scraped with the admin token."""
    text = request("GET", daemon.ops + "/metrics",
                   headers={"Authorization": f"Bearer {ADMIN}"})[1]
    total = 0.0
    for line in text.splitlines():
        key, _, value = line.rpartition(" ")
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += float(value)
    return total


def stored(daemon: Daemon) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{daemon.store_path}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM evaluations ORDER BY id")]
    for row in rows:
        row["span_id"] = row["span_id"].hex()
    return rows


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon(ops=AUTH)


def test_thumbs_by_span_and_by_response_id_join_their_calls(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    liked = app.chat("hi", "hello", response_id="chatcmpl-1")
    disliked = app.chat("hi", "go away", response_id="chatcmpl-2")
    app.flush()

    assert post(daemon, {"trace_id": liked[0], "span_id": liked[1], "label": "thumbs_up",
                         "score": 1}) == (202, {"status": "accepted", "name": "user_feedback",
                                                "call_found": True})
    status, answer = post(daemon, {"response_id": "chatcmpl-2", "label": "thumbs_down",
                                   "score": 0, "comment": "rude"})
    assert (status, answer["call_found"]) == (202, True)

    rows = stored(daemon)
    assert [(r["span_id"], r["label"], r["score"], r["source"]) for r in rows] == [
        (liked[1], "thumbs_up", 1.0, "feedback"), (disliked[1], "thumbs_down", 0.0, "feedback")]
    assert rows[1]["explanation"] == "rude" and rows[1]["name"] == "user_feedback"
    assert metric(daemon, "driftwatch_evaluations_received_total", source="feedback") == 2
    app.shutdown()


def test_feedback_before_its_call_waits_for_it(daemon: Daemon) -> None:
    status, answer = post(daemon, {"response_id": "chatcmpl-later", "name": "csat",
                                   "score": 4})
    assert (status, answer["call_found"]) == (202, False)  # accepted, not 404
    assert stored(daemon) == []

    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    app.chat("hi", "hello", response_id="chatcmpl-later")
    app.flush()
    [row] = wait_for(lambda: stored(daemon))
    assert (row["name"], row["score"]) == ("csat", 4.0)
    app.shutdown()


BAD = [
    ([1, 2], "body: expected a JSON object"),
    ({"span_id": "00f067aa0ba902b7", "score": 1}, "trace_id: required with the other span id"),
    ({"score": 1}, "trace_id: name the call by trace_id and span_id, or by response_id"),
    ({"trace_id": "xyz", "span_id": "00f067aa0ba902b7", "score": 1},
     "trace_id: expected 32 hex digits"),
    ({"trace_id": "0" * 32, "span_id": "00f067aa0ba902b7", "score": 1},
     "trace_id: expected 32 hex digits, not all zero"),
    ({"response_id": "r", "score": "good"}, "score: expected a finite number, got: 'good'"),
    ({"response_id": "r", "score": True}, "score: expected a finite number, got: True"),
    ({"response_id": "r"}, "score: give a score, a label or both, got: neither"),
    ({"response_id": "r", "label": 5}, "label: expected a string, got: 5"),
    ({"response_id": "r", "label": "x" * 65}, "label: at most 64 characters, got: 65"),
    ({"response_id": "r", "score": 1, "name": "n" * 65}, "name: at most 64 characters"),
    ({"response_id": "r", "score": 1, "name": "bad\nname"}, "name: at most 64 printable"),
    ({"response_id": "r", "score": 1, "comment": "c" * 2049},
     "comment: at most 2048 characters, got: 2049"),
    ({"response_id": "r", "score": 1, "explanation": "a", "comment": "b"},
     "comment: give explanation or comment, not both"),
    ({"response_id": "r", "score": 1, "thumbs": "up"}, "thumbs: unknown field"),
]


def test_every_bad_field_is_named_and_counted(daemon: Daemon) -> None:
    for body, error in BAD:
        status, answer = post(daemon, body)
        assert status == 400 and answer["error"].startswith(error), (body, answer)
    assert metric(daemon, "driftwatch_evaluations_refused_total", reason="invalid") == len(BAD)
    assert metric(daemon, "driftwatch_store_pending_evaluations") == 0  # nothing kept


def test_a_body_that_is_not_json_is_refused(daemon: Daemon) -> None:
    status, text = request("POST", daemon.ops + "/api/v1/feedback", b"{not json",
                           {"Content-Type": "application/json",
                            "Authorization": f"Bearer {FEEDBACK}"})
    assert status == 400 and "body: expected a JSON object" in text


def test_the_feedback_token_sends_feedback_and_nothing_else(daemon: Daemon) -> None:
    body = {"response_id": "r", "label": "thumbs_up"}
    assert post(daemon, body, token=ADMIN)[0] == 202  # admin may too
    assert post(daemon, body, token=READ)[0] == 403  # a read token may not write
    assert post(daemon, body, token=None)[0] == 401
    assert post(daemon, body, token="wrong-token-0123456789abc")[0] == 401
    auth = {"Authorization": f"Bearer {FEEDBACK}"}
    for method, path in (("GET", "/api/v1/calls"), ("GET", "/metrics"),
                         ("POST", "/api/v1/jobs/latency/run"), ("GET", "/api/v1/results")):
        status, text = request(method, daemon.ops + path, b"{}" if method == "POST" else None,
                               {**auth, "Content-Type": "application/json"})
        assert status == 403 and "this token's scope is feedback" in text, (path, text)
    assert metric(daemon, "driftwatch_ops_requests_refused_total", reason="scope") == 5


def test_a_browser_on_another_site_cannot_send_feedback(daemon: Daemon) -> None:
    body = {"response_id": "r", "label": "thumbs_up"}
    assert post(daemon, body, headers={"Origin": "https://evil.example"})[0] == 403
    status, _ = request("POST", daemon.ops + "/api/v1/feedback", json.dumps(body).encode(),
                        {"Content-Type": "text/plain", "Authorization": f"Bearer {FEEDBACK}"})
    assert status == 415
    assert metric(daemon, "driftwatch_evaluations_received_total", source="feedback") == 0
    assert metric(daemon, "driftwatch_store_pending_evaluations") == 0


def test_past_the_most_pending_evaluations_feedback_gets_503_with_retry_after(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(ops=AUTH, ingest={"max_pending_evaluations": 2})
    for i in range(2):
        status, answer = post(daemon, {"response_id": f"chatcmpl-never-{i}", "score": 1})
        assert (status, answer["call_found"]) == (202, False)

    status, headers, body = raw_request(
        "POST", daemon.ops + "/api/v1/feedback",
        json.dumps({"response_id": "chatcmpl-never-2", "score": 1}).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {FEEDBACK}"})
    assert (status, headers["Retry-After"]) == (503, "60")
    assert "ingest.max_pending_evaluations" in json.loads(body)["error"]
    assert metric(daemon, "driftwatch_evaluations_refused_total", reason="pending_full") == 1
    assert metric(daemon, "driftwatch_store_pending_evaluations") == 2, "none dropped for it"

    app = LLMApp(otlp_exporter("http", daemon.http))
    app.chat("hi", "hello", response_id="chatcmpl-1")
    app.flush()
    assert post(daemon, {"response_id": "chatcmpl-1", "score": 0}) == (
        202, {"status": "accepted", "name": "user_feedback", "call_found": True})
    app.chat("hi", "hello", response_id="chatcmpl-never-2")  # its call came: the retry joins
    app.flush()
    assert post(daemon, {"response_id": "chatcmpl-never-2", "score": 1})[0] == 202
    assert [r["score"] for r in stored(daemon)] == [0.0, 1.0]
    app.shutdown()
