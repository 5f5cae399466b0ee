"""The daemon as a whole: durability, shutdown, joins across requests, probes and metrics."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli, get, raw_request, wait_for, write_config
from tests.texts import banking_prompts, long_pairs


def test_every_acknowledged_call_survives_kill_9(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    prompts = banking_prompts(300, offset=500)
    for prompt in prompts:
        app.chat(prompt, "answer")
    app.flush()  # returns once every export was acknowledged
    acknowledged = len(app.exporter.exported)

    daemon.kill()
    restarted = Daemon(config_path=daemon.config_path, store_path=daemon.store_path).start()
    try:
        assert acknowledged == 300
        assert sorted(c["prompt"] for c in restarted.calls()) == sorted(prompts)
    finally:
        restarted.stop()
        app.shutdown()


def test_sigterm_drains_and_exits_zero_within_ten_seconds(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    for prompt in banking_prompts(50):
        app.chat(prompt, "answer")
    app.flush()

    began = time.monotonic()
    code = daemon.stop(signal.SIGTERM)

    assert code == 0
    assert time.monotonic() - began < 10
    assert len(daemon.calls()) == 50
    app.shutdown()


def test_sigint_also_stops_cleanly(daemon: Daemon) -> None:
    assert daemon.stop(signal.SIGINT) == 0


def span_request(trace_id: bytes, span_id: bytes, *, parent: bytes = b"",
                 attributes: dict[str, object] | None = None, name: str = "chat gpt-4o",
                 service: str = "py-app") -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.parent_span_id, span.name = trace_id, span_id, parent, name
    span.start_time_unix_nano = time.time_ns() - 2_000_000_000
    span.end_time_unix_nano = time.time_ns()
    for key, value in (attributes or {}).items():
        attr = span.attributes.add()
        attr.key = key
        if isinstance(value, int):
            attr.value.int_value = value
        else:
            attr.value.string_value = str(value)
    return request


def log_request(trace_id: bytes, span_id: bytes, events: list[tuple[str, dict[str, object]]]
                ) -> ExportLogsServiceRequest:
    """OTel v1.28-1.36 GenAI log events, as opentelemetry-instrumentation-openai-v2 emits."""
    request = ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    for i, (name, body) in enumerate(events):
        record = scope_logs.log_records.add()
        record.trace_id, record.span_id = trace_id, span_id
        record.time_unix_nano = time.time_ns() + i
        record.event_name = name
        attr = record.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.system", "openai"
        _fill_kvlist(record.body, body)
    return request


def _fill_kvlist(value, body: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    for key, item in body.items():
        kv = value.kvlist_value.values.add()
        kv.key = key
        if isinstance(item, dict):
            _fill_kvlist(kv.value, item)
        elif isinstance(item, int):
            kv.value.int_value = item
        else:
            kv.value.string_value = str(item)


def post(daemon: Daemon, signal_path: str, message: object) -> int:
    body = message.SerializeToString()  # type: ignore[attr-defined]
    return raw_request("POST", f"{daemon.http}/v1/{signal_path}", body,
                       {"Content-Type": "application/x-protobuf"})[0]


CHAT_NO_CONTENT = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai",
                   "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 9}
EVENTS = [("gen_ai.system.message", {"content": "You are terse."}),
          ("gen_ai.user.message", {"content": "What is my balance?"}),
          ("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                             "message": {"content": "It is 42 EUR."}})]


def test_log_events_arriving_after_the_span_fill_in_its_texts(daemon: Daemon) -> None:
    trace_id, span_id = os.urandom(16), os.urandom(8)
    assert post(daemon, "traces", span_request(trace_id, span_id,
                                               attributes=CHAT_NO_CONTENT)) == 200
    assert daemon.calls()[0]["content_captured"] is False

    assert post(daemon, "logs", log_request(trace_id, span_id, EVENTS)) == 200

    [call] = daemon.calls()
    assert call["system_prompt"] == "You are terse."
    assert call["prompt"] == "What is my balance?"
    assert call["completion"] == "It is 42 EUR."
    assert call["content_captured"] is True


def test_log_events_arriving_before_the_span_are_joined_when_it_comes(daemon: Daemon) -> None:
    trace_id, span_id = os.urandom(16), os.urandom(8)
    assert post(daemon, "logs", log_request(trace_id, span_id, EVENTS)) == 200
    assert daemon.calls() == []

    assert post(daemon, "traces", span_request(trace_id, span_id,
                                               attributes=CHAT_NO_CONTENT)) == 200

    [call] = daemon.calls()
    assert call["prompt"] == "What is my balance?"


def test_framework_span_wrapping_a_provider_span_counts_once(daemon: Daemon) -> None:
    trace_id, outer, inner = os.urandom(16), os.urandom(8), os.urandom(8)
    langchain = {"llm.request.type": "chat", "gen_ai.system": "Langchain",
                 "gen_ai.request.model": "gpt-4o", "gen_ai.prompt.0.role": "user",
                 "gen_ai.prompt.0.content": "Where is my card?"}
    # The provider span ends first, so it is exported first.
    assert post(daemon, "traces", span_request(trace_id, inner, parent=outer,
                                               attributes=CHAT_NO_CONTENT)) == 200
    assert post(daemon, "traces", span_request(trace_id, outer, attributes=langchain,
                                               name="ChatOpenAI.chat")) == 200

    [call] = daemon.calls()
    assert call["span_id"] == inner.hex()
    assert call["prompt"] == "Where is my card?"  # taken over from the framework span
    assert daemon.metric("driftwatch_llm_calls_stored_total") == 1


def test_redelivered_span_is_stored_once(daemon: Daemon) -> None:
    request = span_request(os.urandom(16), os.urandom(8), attributes=CHAT_NO_CONTENT)
    for _ in range(3):
        assert post(daemon, "traces", request) == 200

    assert len(daemon.calls()) == 1
    assert daemon.metric("driftwatch_llm_calls_duplicate_total") == 2


def test_non_llm_spans_and_metrics_are_accepted_and_counted_not_stored(daemon: Daemon) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    for _ in range(5):
        app.http_span()
    app.flush()
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=daemon.grpc,
                                                              insecure=True))
    meters = MeterProvider(metric_readers=[reader])
    meters.get_meter("app").create_counter("requests").add(3)
    assert meters.force_flush(30_000)
    meters.shutdown()
    app.shutdown()

    assert app.exporter.failures == 0
    assert daemon.calls() == []
    assert daemon.metric("driftwatch_spans_by_kind_total", kind="other") == 5
    assert daemon.metric("driftwatch_metric_points_received_total") >= 1
    assert daemon.metric("driftwatch_receiver_requests_total", signal="metrics",
                         code="OK") >= 1


def test_probes_and_self_metrics(daemon: Daemon) -> None:
    assert get(daemon.ops + "/healthz")[0] == 200
    status, body = get(daemon.ops + "/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
    app = LLMApp(otlp_exporter("http", daemon.http))
    app.chat("Is my transfer pending?", "Yes.")
    app.flush()
    app.shutdown()

    metrics = daemon.metrics()
    for name in ("driftwatch_spans_received_total", "driftwatch_spans_accepted_total",
                 "driftwatch_llm_calls_stored_total", "driftwatch_ingest_queue_items",
                 "driftwatch_store_commit_duration_seconds_count",
                 "driftwatch_receiver_request_duration_seconds_count"):
        assert any(key.startswith(name) for key in metrics), name
    assert daemon.metric("driftwatch_spans_accepted_total", transport="http") == 1
    assert daemon.metric("driftwatch_llm_calls_stored_total") == 1


def test_start_up_objects_are_frozen_out_of_garbage_collection_and_pauses_are_counted(
        daemon: Daemon) -> None:
    # Start-up builds ~100,000 objects (config, libraries, models); frozen, the collections
    # that ingest triggers no longer walk them.
    assert daemon.metric("driftwatch_gc_frozen_objects") > 20_000
    # The settling collection itself is a full one, counted by the pause callback.
    assert daemon.metric("driftwatch_gc_pause_seconds_total", generation="2") > 0


def test_the_store_reports_its_size_on_disk_and_the_space_left(daemon: Daemon) -> None:
    empty = daemon.metric("driftwatch_store_disk_bytes")
    app = LLMApp(otlp_exporter("http", daemon.http))
    pairs = long_pairs(300)
    for prompt, completion in pairs:
        app.chat(prompt, completion)
    app.flush()
    app.shutdown()

    files = [daemon.store_path, daemon.store_path.with_name(daemon.store_path.name + "-wal")]

    def on_disk() -> int:
        return sum(f.stat().st_size for f in files if f.exists())

    # The checkpointer may still be copying the WAL into the database: equal once it is done.
    stored = wait_for(lambda: (n := daemon.metric("driftwatch_store_disk_bytes")) == on_disk()
                      and n)
    assert stored - empty > sum(len(p) + len(c) for p, c in pairs)  # the texts, at least
    fs = os.statvfs(daemon.store_path.parent)
    assert daemon.metric("driftwatch_store_filesystem_free_bytes") == pytest.approx(
        fs.f_bavail * fs.f_frsize, rel=0.01)


def test_a_store_that_cannot_be_read_leaves_metrics_up_and_the_api_says_503(
        start_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(home="store")
    moved = tmp_path / "moved"
    (tmp_path / "store").rename(moved)  # the store's directory is gone from its path
    try:
        daemon.metrics()  # the failed read is counted during this scrape
        status, _ = get(daemon.ops + "/metrics")
        metrics = daemon.metrics()
        calls_status, calls_body = get(daemon.ops + "/api/v1/calls")
    finally:
        moved.rename(tmp_path / "store")

    assert (calls_status, json.loads(calls_body)["error"][:18]) == (503, "store unavailable:")
    assert status == 200
    assert math.isnan(metrics["driftwatch_store_filesystem_free_bytes"])
    assert metrics['driftwatch_metric_read_errors_total{'
                   'metric="driftwatch_store_filesystem_free_bytes"}'] >= 1
    assert math.isnan(metrics["driftwatch_store_calls"])  # its read connection opens by path
    assert metrics["driftwatch_ingest_queue_capacity_items"] > 0  # the rest is all there
    assert daemon.alive()


def test_ops_api_lists_calls_and_rejects_bad_parameters(daemon: Daemon) -> None:
    assert post(daemon, "traces", span_request(os.urandom(16), os.urandom(8),
                                               attributes=CHAT_NO_CONTENT)) == 200

    status, body = get(daemon.ops + "/api/v1/calls?since=1h&service=py-app")
    assert status == 200 and len(json.loads(body)["calls"]) == 1
    status, body = get(daemon.ops + "/api/v1/calls?since=yesterday")
    assert status == 400 and "since" in json.loads(body)["error"]
    status, body = get(daemon.ops + "/api/v1/calls?colour=red")
    assert status == 400 and "colour" in json.loads(body)["error"]


def test_retention_job_runs_on_request(daemon: Daemon) -> None:
    old = span_request(os.urandom(16), os.urandom(8), attributes=CHAT_NO_CONTENT)
    span = old.resource_spans[0].scope_spans[0].spans[0]
    span.start_time_unix_nano -= 8 * 86400 * 10**9  # older than the 7-day default
    span.end_time_unix_nano -= 8 * 86400 * 10**9  # an old call, not one 8 days long
    assert post(daemon, "traces", old) == 200
    assert post(daemon, "traces", span_request(os.urandom(16), os.urandom(8),
                                               attributes=CHAT_NO_CONTENT)) == 200

    as_json = {"Content-Type": "application/json"}
    status, body = raw_request("POST", daemon.ops + "/api/v1/jobs/retention/run", b"{}",
                               as_json)[::2]
    assert status == 200
    assert json.loads(body)["result"]["deleted_calls"] == 1
    assert len(daemon.calls()) == 1
    assert raw_request("POST", daemon.ops + "/api/v1/jobs/nope/run", b"{}", as_json)[0] == 404


@pytest.mark.parametrize("listener", ["otlp_grpc", "otlp_http", "ops"])
def test_a_busy_port_is_one_line_naming_it_for_every_listener(
        tmp_path: Path, listener: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"127.0.0.1:{taken.getsockname()[1]}"
        where = ({"ops": {"endpoint": endpoint}} if listener == "ops"
                 else {"receivers": {listener: {"endpoint": endpoint}}})
        done = cli("run", "--config", str(write_config(tmp_path, **where)), check=False,
                   timeout=120)

    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(f"driftwatch: cannot listen on {endpoint}: ")
    assert "Traceback" not in done.stderr
