"""Evaluation results (`gen_ai.evaluation.result`) from the real OpenTelemetry SDK into the
real daemon: as log records (the SDK's OTLP log exporter, gRPC and HTTP) parented to the
evaluated span, as span events, joined to their calls whichever arrives first, and refused
and counted when they cannot be kept (no name, no call named, or too many already waiting
for their calls)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import EVENT, Evaluator, attributes, log_exporter
from tests.harness import Daemon, wait_for


def stored(daemon: Daemon) -> list[dict[str, Any]]:
    """The evaluations the daemon's store holds, joined to their calls, oldest first."""
    with sqlite3.connect(f"file:{daemon.store_path}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM evaluations ORDER BY id").fetchall()
    found = [dict(row) for row in rows]
    for row in found:
        row["trace_id"], row["span_id"] = row["trace_id"].hex(), row["span_id"].hex()
    return found


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_log_records_parented_to_a_call_are_stored_with_it(daemon: Daemon,
                                                           protocol: str) -> None:
    endpoint = daemon.grpc if protocol == "grpc" else daemon.http
    app = LLMApp(otlp_exporter(protocol, endpoint))
    judge = Evaluator(log_exporter(protocol, endpoint))
    good = app.chat("How do I reset my password?", "Open Settings, then Security.")
    bad = app.chat("Cancel my order", "I like turtles.", model="gpt-4o")
    app.flush()
    judge.evaluate(good, "relevance", score=0.9, label="relevant",
                   explanation="answers the question")
    judge.evaluate(bad, "relevance", score=0.1, label="irrelevant",
                   explanation="off topic")
    judge.flush()

    rows = wait_for(lambda: len(got := stored(daemon)) == 2 and got)
    by_span = {row["span_id"]: row for row in rows}
    assert by_span[good[1]]["score"] == 0.9 and by_span[good[1]]["label"] == "relevant"
    assert by_span[good[1]]["model"] == "gpt-4o-mini"
    assert by_span[bad[1]]["explanation"] == "off topic"
    assert by_span[bad[1]]["model"] == "gpt-4o" and by_span[bad[1]]["source"] == "log"
    assert {row["service"] for row in rows} == {"support-bot"}
    assert daemon.metric("driftwatch_evaluations_received_total", source="log") == 2
    assert daemon.metric("driftwatch_evaluations_joined_total") == 2
    app.shutdown()
    judge.shutdown()


def test_an_evaluation_that_arrives_before_its_call_joins_when_the_call_does(
        daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    judge = Evaluator(log_exporter("http", daemon.http))
    # the ids the app's next spans will have are unknown, so name the calls by response id
    judge.evaluate(None, "helpfulness", score=1.0, response_id="chatcmpl-early")
    judge.evaluate(None, "helpfulness", score=0.0, response_id="chatcmpl-never")
    judge.flush()
    wait_for(lambda: daemon.metric("driftwatch_evaluations_received_total") == 2)
    assert stored(daemon) == []

    call = app.chat("hi", "hello", response_id="chatcmpl-early")
    app.flush()

    [row] = wait_for(lambda: stored(daemon))
    assert (row["trace_id"], row["span_id"], row["score"]) == (*call, 1.0)
    # the one whose call never came still waits (until ingest.join_window)
    assert daemon.metric("driftwatch_store_pending_evaluations") == 1
    app.shutdown()
    judge.shutdown()


def test_by_span_late_arrival_joins_too(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    judge = Evaluator(log_exporter("grpc", daemon.grpc))
    span = app.tracer.start_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini"})
    ids = (f"{span.get_span_context().trace_id:032x}",
           f"{span.get_span_context().span_id:016x}")
    judge.evaluate(ids, "toxicity_free", label="pass")  # while the call is still running
    judge.flush()
    wait_for(lambda: daemon.metric("driftwatch_store_pending_evaluations") == 1)
    span.end()
    app.flush()
    [row] = wait_for(lambda: stored(daemon))
    assert (row["span_id"], row["label"], row["score"]) == (ids[1], "pass", None)
    app.shutdown()
    judge.shutdown()


def test_span_events_on_the_call_or_on_an_evaluation_span_beneath_it(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    with app.tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT,
                                          attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini"}) as call:
        call.add_event(EVENT, attributes(name="groundedness", score=0.7))
        # an evaluator's own span, a child of the call it judges, carries the event too
        with app.tracer.start_as_current_span("evaluate relevance") as judging:
            judging.add_event(EVENT, attributes(name="relevance", label="relevant", score=1))
            judging.add_event(EVENT, {"gen_ai.evaluation.score.value": 0.5})  # no name
    app.flush()

    rows = wait_for(lambda: len(got := stored(daemon)) == 2 and got)
    span_id = f"{call.get_span_context().span_id:016x}"
    assert {(r["name"], r["span_id"], r["source"]) for r in rows} == {
        ("groundedness", span_id, "span_event"), ("relevance", span_id, "span_event")}
    assert daemon.metric("driftwatch_evaluations_refused_total", reason="invalid") == 1
    assert len(daemon.calls()) == 1  # the evaluation span is no call
    app.shutdown()


def test_evaluations_without_a_name_or_a_call_are_refused_and_counted(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    call = app.chat("hi", "hello")
    app.flush()
    judge = Evaluator(log_exporter("http", daemon.http))
    judge.evaluate(call, None, score=0.5)  # no gen_ai.evaluation.name
    judge.evaluate(call, "relevance")  # neither score nor label
    judge.evaluate(None, "relevance", score=0.5)  # neither span nor response id
    judge.evaluate(call, "x" * 65, score=0.5)  # a name too long to become a label
    judge.evaluate(call, "relevance", score=0.5, explanation="y" * 10_000)
    judge.flush()

    [row] = wait_for(lambda: stored(daemon))
    assert len(row["explanation"]) == 2048  # cut, not refused
    assert daemon.metric("driftwatch_evaluations_refused_total", reason="invalid") == 4
    judge.shutdown()
    app.shutdown()


def test_the_response_id_is_on_calls(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    app.chat("hi", "hello", response_id="chatcmpl-42")
    app.chat("hi", "hello")
    app.flush()
    calls = wait_for(lambda: len(got := daemon.calls()) == 2 and got)
    assert sorted(str(c["response_id"]) for c in calls) == ["None", "chatcmpl-42"]
    app.shutdown()


def test_past_the_most_pending_evaluations_new_ones_are_refused_and_counted(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(ingest={"max_pending_evaluations": 3})
    app = LLMApp(otlp_exporter("http", daemon.http))
    call = app.chat("hi", "hello")
    app.flush()
    judge = Evaluator(log_exporter("http", daemon.http))
    for i in range(5):  # calls that never come
        judge.evaluate(None, "helpfulness", score=1.0, response_id=f"chatcmpl-never-{i}")
    judge.evaluate(call, "helpfulness", score=0.5)  # a stored call's joins however many wait
    judge.flush()

    [row] = wait_for(lambda: stored(daemon))
    assert (row["span_id"], row["score"]) == (call[1], 0.5)
    assert daemon.metric("driftwatch_store_pending_evaluations") == 3
    assert daemon.metric("driftwatch_evaluations_refused_total", reason="pending_full") == 2
    assert daemon.metric("driftwatch_evaluations_received_total", source="log") == 6

    app.chat("hi", "hello", response_id="chatcmpl-never-0")  # one came after all: room for one
    app.flush()
    wait_for(lambda: len(stored(daemon)) == 2)
    assert daemon.metric("driftwatch_store_pending_evaluations") == 2
    judge.shutdown()
    app.shutdown()
