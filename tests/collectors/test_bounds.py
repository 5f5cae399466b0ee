"""A span the store cannot hold is refused alone, through OTLP partial success, and the rest
of its request is stored: no value in a request fails the request as a whole.

Once, token counts whose sum passed int64 made SQLite refuse the whole group commit with a
retryable 503 (0 of 100 valid spans stored, retried until the exporter gave up), and calls
dated in 2200 were stored, outlived retention and skewed every percentile.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors.otlp_json import parse_json
from tests.apps import LLMApp, otlp_exporter
from tests.collectors.test_otlp_receivers import chat_span, json_traces, post_traces
from tests.harness import Daemon

MAX_INT64 = 2**63 - 1
YEAR_2200_NS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) * 10**9


def with_tokens(span: dict[str, object], input_tokens: int, output_tokens: int
                ) -> dict[str, object]:
    attributes = [a for a in span["attributes"]  # type: ignore[attr-defined]
                  if not a["key"].startswith("gen_ai.usage.")]
    attributes += [
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(input_tokens)}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": str(output_tokens)}}]
    return {**span, "attributes": attributes}


def starting_at(span: dict[str, object], start_ns: int) -> dict[str, object]:
    return {**span, "startTimeUnixNano": str(start_ns),
            "endTimeUnixNano": str(start_ns + 1_500_000_000)}


def hundred_good_spans() -> list[dict[str, object]]:
    return [chat_span(f"{i + 1:016x}", f"question {i}") for i in range(100)]


def test_an_sdk_batch_with_one_poison_span_stores_the_other_hundred(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    for i in range(50):
        app.chat(f"question {i}", "ok")
    _, poison = app.chat("poison", "ok", input_tokens=MAX_INT64, output_tokens=MAX_INT64)
    for i in range(50, 100):
        app.chat(f"question {i}", "ok")
    app.flush()
    app.shutdown()

    assert app.exporter.failures == 0
    calls = daemon.calls("--limit", "1000")
    assert len(calls) == 100
    assert poison not in {c["span_id"] for c in calls}
    assert daemon.metric("driftwatch_spans_refused_total", reason="out_of_range") == 1
    assert daemon.metric("driftwatch_spans_accepted_total") == 100


def test_partial_success_names_the_refused_span_over_http_json(daemon: Daemon) -> None:
    poison = with_tokens(chat_span("ffffffffffffffff", "poison"), MAX_INT64, MAX_INT64)

    status, _, data = post_traces(daemon, json_traces([*hundred_good_spans(), poison]))

    assert status == 200
    partial = json.loads(data)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "ffffffffffffffff" in partial["errorMessage"]
    assert "input_tokens" in partial["errorMessage"]
    assert len(daemon.calls("--limit", "1000")) == 100


def test_partial_success_names_the_refused_span_over_grpc(daemon: Daemon) -> None:
    poison = with_tokens(chat_span("ffffffffffffffff", "poison"), 10, MAX_INT64)
    request = parse_json(json_traces([*hundred_good_spans(), poison]),
                         ExportTraceServiceRequest)
    channel = grpc.insecure_channel(daemon.grpc)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=ExportTraceServiceRequest.SerializeToString,
        response_deserializer=ExportTraceServiceResponse.FromString)
    try:
        response = export(request, timeout=30)
    finally:
        channel.close()

    assert response.partial_success.rejected_spans == 1
    assert "output_tokens" in response.partial_success.error_message
    assert len(daemon.calls("--limit", "1000")) == 100


def test_a_call_dated_2200_is_refused_alone(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    app.chat("from the future", "ok", start_ns=YEAR_2200_NS, duration_s=1.0)
    app.chat("from today", "ok")
    app.flush()
    app.shutdown()
    status, _, data = post_traces(daemon, json_traces([
        starting_at(chat_span("eee19b7ec3c1b174", "also the future"), YEAR_2200_NS),
        chat_span("eee19b7ec3c1b175", "also today")]))

    assert app.exporter.failures == 0
    assert status == 200
    partial = json.loads(data)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "start_time_unix_nano" in partial["errorMessage"]
    assert sorted(c["prompt"] for c in daemon.calls()) == ["also today", "from today"]
    assert daemon.metric("driftwatch_spans_refused_total", reason="out_of_range") == 2


def test_how_far_ahead_a_call_may_start_is_configurable(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"max_start_ahead": "1d"})
    hours_ahead = time.time_ns() + 2 * 3600 * 10**9
    days_ahead = time.time_ns() + 2 * 86400 * 10**9

    status, _, data = post_traces(daemon, json_traces([
        starting_at(chat_span("eee19b7ec3c1b174", "two hours ahead"), hours_ahead),
        starting_at(chat_span("eee19b7ec3c1b175", "two days ahead"), days_ahead)]))

    assert status == 200
    assert json.loads(data)["partialSuccess"]["rejectedSpans"] == "1"
    assert [c["prompt"] for c in daemon.calls("--since", "3650d")] == ["two hours ahead"]
