"""Overload: a full ingest queue answers 503 + Retry-After / UNAVAILABLE + RetryInfo, the real
exporters retry, and every call ends up stored exactly once."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, raw_request
from tests.texts import banking_prompts, long_pairs

TINY_QUEUE = {"ingest": {"queue_max_items": 1, "retry_after": "1s"}}


def hold_the_store(daemon: Daemon, seconds: float) -> threading.Thread:
    """Take SQLite's write lock for a while, as a slow disk or a long checkpoint would: the
    daemon's commits wait, so its queue surely fills, however fast this machine is."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(daemon.store_path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


def run_apps(daemon: Daemon, protocol: str, apps: int, calls_each: int,
             prompts: list[str] | None = None) -> list[LLMApp]:
    """Several apps sending at once from their own threads while the store is held for the
    first two seconds; returns them after a flush."""
    prompts = prompts or banking_prompts(apps * calls_each)
    started = [LLMApp(otlp_exporter(protocol, daemon.grpc if protocol == "grpc" else daemon.http),
                      service=f"app-{i}") for i in range(apps)]

    def send(i: int) -> None:
        for prompt in prompts[i * calls_each:(i + 1) * calls_each]:
            started[i].chat(prompt, "ok")
        started[i].flush()

    held = hold_the_store(daemon, 2.0)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(apps)]
    for t in threads:
        t.start()
    for t in [*threads, held]:
        t.join()
    for app in started:
        app.shutdown()
    return started


def assert_every_call_stored_once(daemon: Daemon, apps: list[LLMApp]) -> None:
    sent = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}")
            for app in apps for s in app.exporter.exported}
    stored = [(c["trace_id"], c["span_id"]) for c in daemon.calls("--limit", "100000")]
    assert len(stored) == len(set(stored))
    assert set(stored) == sent


def test_http_exporters_retry_after_503_and_nothing_is_lost(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(**TINY_QUEUE)

    apps = run_apps(daemon, "http", apps=6, calls_each=150)

    assert all(app.exporter.failures == 0 for app in apps)
    assert daemon.metric("driftwatch_receiver_requests_total", transport="http", code="503") > 0
    assert_every_call_stored_once(daemon, apps)


def test_grpc_exporters_retry_after_unavailable_and_nothing_is_lost(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(**TINY_QUEUE)

    apps = run_apps(daemon, "grpc", apps=6, calls_each=150)

    assert all(app.exporter.failures == 0 for app in apps)
    assert daemon.metric("driftwatch_receiver_requests_total", transport="grpc",
                         code="UNAVAILABLE") > 0
    assert_every_call_stored_once(daemon, apps)


def rag_prompts(n: int, chars: int = 20_000) -> list[str]:
    """Prompts as a retrieval app builds them: many real passages (corpora/long_texts)
    pasted in front of the question, about `chars` long."""
    passages = [text for pair in long_pairs(200) for text in pair]
    prompts = []
    for i in range(n):
        prompt, j = "", i
        while len(prompt) < chars:
            prompt += passages[j % len(passages)] + "\n\n"
            j += 7
        prompts.append(prompt)
    return prompts


def test_long_prompts_fill_the_queue_by_bytes_and_nothing_is_lost(start_daemon) -> None:  # type: ignore[no-untyped-def]
    # 160 calls are far from the item bound; their 20 KB prompts pass the byte bound.
    daemon = start_daemon(ingest={"queue_max_items": 100_000, "queue_max_bytes": "256KiB",
                                  "retry_after": "1s"})

    apps = run_apps(daemon, "http", apps=4, calls_each=40, prompts=rag_prompts(160))

    assert all(app.exporter.failures == 0 for app in apps)
    assert daemon.metric("driftwatch_receiver_requests_total", transport="http", code="503") > 0
    assert daemon.metric("driftwatch_ingest_queue_capacity_bytes") == 256 << 10
    assert_every_call_stored_once(daemon, apps)
    assert min(len(c["prompt"]) for c in daemon.calls()) >= 20_000


def hammer(send: Callable[[], object], threads: int = 8, each: int = 15) -> list[object]:
    results: list[object] = []
    lock = threading.Lock()

    def loop() -> None:
        for _ in range(each):
            outcome = send()
            with lock:
                results.append(outcome)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def batch_body(n: int) -> bytes:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add()
    for _ in range(n):
        span = spans.spans.add()
        span.trace_id, span.span_id = os.urandom(16), os.urandom(8)
        span.name, span.start_time_unix_nano, span.end_time_unix_nano = "chat m", 1, 2
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.operation.name", "chat"
    return request.SerializeToString()


def test_overloaded_http_answer_carries_retry_after(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(**TINY_QUEUE)

    responses = hammer(lambda: raw_request(
        "POST", daemon.http + "/v1/traces", batch_body(200),
        {"Content-Type": "application/x-protobuf"}))

    refused = [r for r in responses if r[0] == 503]  # type: ignore[index]
    assert refused, "the tiny queue never filled"
    _, headers, body = refused[0]  # type: ignore[misc]
    assert headers["Retry-After"] == "1"
    assert "queue full" in status_pb2.Status.FromString(body).message


def test_overloaded_grpc_answer_carries_retry_info_in_both_trailers(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(**TINY_QUEUE)
    channel = grpc.insecure_channel(daemon.grpc)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b, response_deserializer=ExportTraceServiceResponse.FromString)

    def send() -> object:
        try:
            export(batch_body(200), timeout=30)
            return None
        except grpc.RpcError as err:
            return err

    errors = [e for e in hammer(send) if e is not None]
    channel.close()

    assert errors, "the tiny queue never filled"
    err = errors[0]
    assert err.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    trailers = dict(err.trailing_metadata())  # type: ignore[attr-defined]
    info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert info.retry_delay.seconds == 1
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    detail = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(detail) and detail.retry_delay.seconds == 1
    assert "queue full" in status.message
