"""`driftwatch replay`: recordings sent into the real daemon over OTLP/HTTP, as a user runs it.

Recordings are made the way users make them: `driftwatch calls --json` of a daemon fed by
the real OpenTelemetry SDK, and Collector file-exporter lines (OTLP/JSON, hex ids) encoded
from real SDK spans.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from monitor.cli.replay import OtlpHttpSender
from monitor.core.records import rfc3339
from tests.apps import LLMApp, otlp_exporter
from tests.clocks import WatchedClock
from tests.harness import REPO, Daemon
from tests.loopback import Reply, scripted

SECOND_NS = 10**9


def replay(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor.cli.replay", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=dict(os.environ))


def start_ns(call: dict[str, Any]) -> int:
    moment = datetime.fromisoformat(call["start"].replace("Z", "+00:00"))
    return int(moment.timestamp()) * SECOND_NS + moment.microsecond * 1000


@pytest.fixture
def daemons(start_daemon: Callable[..., Daemon]) -> Callable[[str], Daemon]:
    """Start daemons, each on its own store under tmp_path/NAME."""
    return lambda name: start_daemon(home=name)


def record(daemon: Daemon, path: Path) -> list[dict[str, Any]]:
    """Calls of every shape a user records, stored by `daemon`, written as calls --json."""
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="recorded-bot")
    base = time.time_ns() - 3600 * SECOND_NS
    app.chat("Où est ma carte ? <b>vite</b>", "Elle arrive demain.", system="Be brief.",
             start_ns=base, duration_s=1.25, input_tokens=12, output_tokens=7)
    app.chat("and the fee?", None, model="gpt-4o", error="rate_limit_exceeded",
             start_ns=base + 30 * SECOND_NS, duration_s=0.5)
    app.chat(None, None, model="claude-sonnet", provider="anthropic",
             start_ns=base + 90 * SECOND_NS, duration_s=2.0)
    app.flush()
    app.shutdown()
    calls = daemon.calls("--service", "recorded-bot")
    path.write_text("".join(json.dumps(c) + "\n" for c in calls))
    return calls


def test_a_calls_recording_backfills_another_daemon_exactly(
        daemons: Callable[[str], Daemon], tmp_path: Path) -> None:
    recording = tmp_path / "calls.jsonl"
    recorded = record(daemons("source"), recording)
    target = daemons("target")

    result = replay(str(recording), "--preserve-timestamps", "--endpoint", target.http)

    assert result.returncode == 0, result.stderr
    assert "3 of 3 spans accepted, 0 refused" in result.stderr
    assert target.calls() == recorded
    again = replay(str(recording), "--preserve-timestamps", "--endpoint", target.http)
    assert again.returncode == 0, again.stderr
    assert target.calls() == recorded, "a backfill replayed twice stores each call once"


def test_by_default_the_recording_moves_to_end_now_with_fresh_ids(
        daemons: Callable[[str], Daemon], tmp_path: Path) -> None:
    recording = tmp_path / "calls.jsonl"
    daemon = daemons("one")
    recorded = record(daemon, recording)

    before = time.time_ns()
    result = replay(str(recording), "--endpoint", daemon.http)

    assert result.returncode == 0, result.stderr
    replayed = [c for c in daemon.calls("--service", "recorded-bot")
                if c["span_id"] not in {r["span_id"] for r in recorded}]
    assert len(replayed) == len(recorded)
    last = replayed[-1]
    assert before - 5 * SECOND_NS <= start_ns(last) + last["duration_s"] * SECOND_NS
    assert start_ns(last) + last["duration_s"] * SECOND_NS <= time.time_ns()
    gaps = [start_ns(b) - start_ns(a) for a, b in itertools.pairwise(replayed)]
    assert gaps == [start_ns(b) - start_ns(a) for a, b in itertools.pairwise(recorded)]
    same = ("service", "model", "prompt", "completion", "system_prompt", "duration_s",
            "status", "error_type", "input_tokens", "output_tokens")
    assert [{k: c[k] for k in same} for c in replayed] == [{k: c[k] for k in same}
                                                          for c in recorded]


def collector_lines() -> tuple[list[str], str, str]:
    """A Collector file exporter's output for one chat call whose texts are on a v1.37
    details log event: a traces line, a logs line and a metrics line (OTLP/JSON, hex ids)."""
    sink = InMemorySpanExporter()
    app = LLMApp(sink, service="collected-bot")
    trace_id, span_id = app.chat(None, None, model="gpt-4o-mini", duration_s=0.75,
                                 start_ns=time.time_ns() - 600 * SECOND_NS)
    app.flush()
    traces = json_format.MessageToDict(encode_spans(sink.get_finished_spans()))
    logs = logs_service_pb2.ExportLogsServiceRequest()
    record = logs.resource_logs.add().scope_logs.add().log_records.add(
        time_unix_nano=time.time_ns() - 599 * SECOND_NS, event_name=(
            "gen_ai.client.inference.operation.details"),
        trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id))
    record.attributes.add(key="gen_ai.input.messages", value=common_pb2.AnyValue(
        string_value=json.dumps([{"role": "user", "parts": [
            {"type": "text", "content": "Can I withdraw cash abroad?"}]}])))
    lines = [_hex_ids(traces), _hex_ids(json_format.MessageToDict(logs)),
             json.dumps({"resourceMetrics": []})]
    return lines, trace_id, span_id


def _hex_ids(message: dict[str, Any]) -> str:
    """The Collector writes ids as hex (OTLP/JSON), where MessageToDict writes base64."""
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
    walk(message)
    return json.dumps(message)


def test_collector_file_exporter_lines_are_replayed_with_their_hex_ids(
        daemons: Callable[[str], Daemon], tmp_path: Path) -> None:
    daemon = daemons("one")
    lines, trace_id, span_id = collector_lines()
    recording = tmp_path / "traces.json"
    recording.write_text("\n".join(lines) + "\n")

    result = replay(str(recording), "--preserve-timestamps", "--endpoint", daemon.http)

    assert result.returncode == 0, result.stderr
    assert "1 of 1 spans accepted" in result.stderr
    assert "1 of 1 log records accepted" in result.stderr
    assert "1 metrics lines skipped" in result.stderr
    [call] = daemon.calls("--service", "collected-bot")
    assert (call["trace_id"], call["span_id"]) == (trace_id, span_id)
    assert call["prompt"] == "Can I withdraw cash abroad?"


def test_a_malformed_line_is_named_and_the_rest_still_sent(
        daemons: Callable[[str], Daemon], tmp_path: Path) -> None:
    daemon = daemons("one")
    an_hour_ago = rfc3339(time.time_ns() - 3600 * SECOND_NS)
    good = {"trace_id": "ab" * 16, "service": "lined-bot", "start": an_hour_ago,
            "duration_s": 0.5, "model": "m", "prompt": "hello", "completion": "hi"}
    recording = tmp_path / "mixed.jsonl"
    recording.write_text("\n".join([
        json.dumps({**good, "span_id": "01" * 8}),
        '{"trace_id": "ab", oops',
        json.dumps({"hello": "world"}),
        json.dumps({**good, "span_id": "02" * 8, "start": "yesterday"}),
        json.dumps({**good, "span_id": "03" * 8, "input_tokens": -4}),
        "",
        json.dumps({**good, "span_id": "04" * 8}),
    ]) + "\n")

    result = replay(str(recording), "--preserve-timestamps", "--endpoint", daemon.http)

    assert result.returncode == 1
    err = result.stderr
    assert f"{recording}:2: not valid JSON" in err
    assert f"{recording}:3: neither an OTLP export request" in err
    assert f"{recording}:4: start: expected an RFC 3339 time, got: 'yesterday'" in err
    assert f"{recording}:5: input_tokens: expected a count, got: -4" in err
    assert "4 bad lines skipped" in err and "2 of 2 spans accepted" in err
    stored = daemon.calls("--service", "lined-bot")
    assert [c["span_id"] for c in stored] == ["01" * 8, "04" * 8]


def test_speed_replays_live_at_a_multiple_of_the_recorded_pace(
        daemons: Callable[[str], Daemon], tmp_path: Path) -> None:
    daemon = daemons("one")
    recording = tmp_path / "paced.jsonl"
    recording.write_text("".join(json.dumps({
        "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}", "service": "paced-bot",
        "start": f"2026-01-01T00:00:0{2 * i}Z", "duration_s": 0.1, "prompt": f"q{i}"}) + "\n"
        for i in range(3)))

    began = time.monotonic()
    result = replay(str(recording), "--speed", "10", "--endpoint", daemon.http)
    elapsed = time.monotonic() - began

    assert result.returncode == 0, result.stderr
    assert elapsed >= 0.4  # 4 recorded seconds at 10x
    starts = [start_ns(c) for c in daemon.calls("--service", "paced-bot")]
    assert len(starts) == 3
    assert [round((b - a) / SECOND_NS, 1) for a, b in itertools.pairwise(starts)] == [0.2, 0.2]
    assert abs(starts[0] - time.time_ns()) < 60 * SECOND_NS


class FakeReceiver:
    """An OTLP/HTTP endpoint that is overloaded once, then refuses one span of each request
    through partial_success: the answers a busy daemon gives."""

    def __init__(self) -> None:
        self.requests = 0
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = trace_service_pb2.ExportTraceServiceRequest.FromString(await request.read())
        assert len(body.resource_spans[0].scope_spans[0].spans) == 2
        if self.requests == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        response = trace_service_pb2.ExportTraceServiceResponse()
        response.partial_success.rejected_spans = 1
        response.partial_success.error_message = "span 1: no gen_ai.operation.name"
        return web.Response(body=response.SerializeToString(),
                            content_type="application/x-protobuf")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/traces", self._handle)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> FakeReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def test_503_is_retried_and_refusals_are_summed_up(tmp_path: Path) -> None:
    recording = tmp_path / "two.jsonl"
    recording.write_text("".join(json.dumps({
        "trace_id": "cd" * 16, "span_id": f"{i + 1:016x}", "service": "s",
        "start": "2026-01-01T00:00:00Z", "duration_s": 1}) + "\n" for i in range(2)))
    with FakeReceiver() as receiver:
        result = replay(str(recording), "--endpoint", receiver.url)
    assert receiver.requests == 2
    assert result.returncode == 1
    assert "1 of 2 spans accepted, 1 refused" in result.stderr
    assert "span 1: no gen_ai.operation.name" in result.stderr
    assert "1 retries after 503/429" in result.stderr


def test_an_unreachable_daemon_and_a_missing_file_are_named(tmp_path: Path) -> None:
    recording = tmp_path / "one.jsonl"
    recording.write_text(json.dumps({"trace_id": "ef" * 16, "span_id": "01" * 8,
                                     "service": "s", "start": "2026-01-01T00:00:00Z",
                                     "duration_s": 1}) + "\n")
    down = replay(str(recording), "--endpoint", "http://127.0.0.1:9")
    assert down.returncode == 1
    assert "cannot reach the OTLP/HTTP receiver at http://127.0.0.1:9" in down.stderr

    missing = replay(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "no such file" in missing.stderr and "nope.jsonl" in missing.stderr

    usage = replay(str(recording), "--speed", "0")
    assert usage.returncode == 2 and "--speed" in usage.stderr


def test_a_receiver_busy_past_the_retry_budget_counts_the_request_refused() -> None:
    busy = Reply(503, status_pb2.Status(code=14, message="queue full").SerializeToString(),
                 {"Retry-After": "1", "Content-Type": "application/x-protobuf"})
    request = trace_service_pb2.ExportTraceServiceRequest()
    clock = WatchedClock()
    with scripted(Reply(429, headers={"Retry-After": "0"}), default=busy) as (url, script):
        outcome = OtlpHttpSender(url, retry_for_s=1.5, clock=clock).send(
            "traces", request, 2)
    assert (outcome.rejected, outcome.message) == (2, "HTTP 503: queue full")
    assert clock.waits == [0.0, 1.0], "each Retry-After, until the next would pass 1.5 s"
    assert len(script.requests) == 3
