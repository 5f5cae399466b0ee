"""No one client can take ingest: connections and streams that stall hold nothing the real
exporters need, and are cut once their time is up.

The attackers are the issues' probes (tests/collectors/attackers.py): HTTP bodies that
announce 64 MiB and send one byte, heads cut off mid-header, idle connections, and gRPC
streams that announce a 1 MiB message and send one byte of it. The exporters are the real
OpenTelemetry SDK's.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.collectors.attackers import (
    SLOW_HEAD,
    StalledGrpc,
    is_open,
    open_http,
    slow_body_head,
    what_server_said,
)
from tests.harness import Daemon, raw_request, wait_for

TOKEN = "s3cret-token-for-tests-0123456789"
BEARER = f"Bearer {TOKEN}"
# Timeouts far longer than any test here runs: the attackers surely still hold what they
# took while the exporters send.
PATIENT = {"header_timeout": "10m", "idle_timeout": "10m"}
PATIENT_HTTP = {**PATIENT, "body_timeout": "10m"}
PATIENT_GRPC = {**PATIENT, "message_timeout": "10m"}
DEADLINE_EXCEEDED, UNAUTHENTICATED = str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0]), str(
    grpc.StatusCode.UNAUTHENTICATED.value[0])


@pytest.fixture
def held() -> Iterator[list[Any]]:
    """The attackers' sockets and connections, closed after the test however it ends."""
    things: list[Any] = []
    yield things
    for thing in things:
        thing.close()


def export_calls(protocol: str, endpoint: str, prompts: list[str], **kwargs: object) -> LLMApp:
    app = LLMApp(otlp_exporter(protocol, endpoint, **kwargs), service=f"{protocol}-app")
    for prompt in prompts:
        app.chat(prompt, "ok")
    app.flush()
    app.shutdown()
    return app


def test_slow_http_bodies_heads_and_idle_connections_leave_room_for_exporters(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    # Five 64 MiB announcements once reserved the whole 256 MiB in-flight budget.
    daemon: Daemon = start_daemon(receivers={"otlp_http": PATIENT_HTTP})
    held += [open_http(daemon.http, slow_body_head()) for _ in range(8)]
    held += [open_http(daemon.http, SLOW_HEAD) for _ in range(8)]
    held += [open_http(daemon.http) for _ in range(8)]

    app = export_calls("http", daemon.http, [f"question {i}" for i in range(30)])

    assert app.exporter.failures == 0
    assert len(daemon.calls()) == 30
    assert all(is_open(s) for s in held), "the attackers were let go early"


def test_stalled_http_connections_are_cut_when_their_time_is_up(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(receivers={"otlp_http": {
        "header_timeout": "1s", "body_timeout": "1s", "idle_timeout": "1s"}})
    body = open_http(daemon.http, slow_body_head())
    head = open_http(daemon.http, SLOW_HEAD)
    idle = open_http(daemon.http)
    held += [body, head, idle]

    answer = what_server_said(body)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"bytes/s" in answer
    assert what_server_said(head) == b""
    assert what_server_said(idle) == b""
    for reason in ("body_timeout", "header_timeout"):
        assert daemon.metric("driftwatch_receiver_http_connections_cut_total",
                             reason=reason) >= 1, reason
    # The receiver itself is as good as before.
    assert export_calls("http", daemon.http, ["after the cut"]).exporter.failures == 0


def test_connections_past_the_bound_are_answered_503_and_the_receiver_recovers(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(receivers={"otlp_http": {**PATIENT_HTTP, "max_connections": 4}})
    held += [open_http(daemon.http) for _ in range(4)]
    turned_away = open_http(daemon.http)
    held.append(turned_away)

    answer = what_server_said(turned_away)

    assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
    assert b"Retry-After: 1" in answer
    held[0].close()  # one slot is free again, once the receiver has seen it close
    wait_for(lambda: raw_request("POST", daemon.http + "/v1/traces", b"{}",
                                 {"Content-Type": "application/json"})[0] == 200)
    assert daemon.metric("driftwatch_receiver_http_connections_cut_total",
                         reason="max_connections") >= 1


def test_unauthenticated_grpc_streams_are_refused_before_they_take_a_slot(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    # Once, 64 such streams took every slot of the 64-call limit for as long as they liked,
    # and the token was checked only after the whole message had arrived.
    daemon: Daemon = start_daemon(receivers={"otlp_grpc": {
        **PATIENT_GRPC, "auth": {"bearer_token": TOKEN}}})
    attackers = [StalledGrpc(daemon.grpc, streams=32) for _ in range(4)]
    held += attackers

    outcomes = [a.outcomes() for a in attackers]

    assert [set(o.values()) for o in outcomes] == [{UNAUTHENTICATED}] * 4
    assert sum(map(len, outcomes)) == 128
    app = export_calls("grpc", daemon.grpc, [f"q{i}" for i in range(20)],
                       headers={"authorization": BEARER})
    assert app.exporter.failures == 0
    assert len(daemon.calls()) == 20
    assert daemon.metric("driftwatch_receiver_requests_total", transport="grpc",
                         code="UNAUTHENTICATED") == 128


def test_stalled_grpc_streams_leave_room_for_exporters_with_and_without_a_token(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    # Streams that do carry the token (or need none) wait for their message; each
    # connection holds at most max_concurrent_streams of them, far below the server's limit.
    open_receiver = start_daemon(home="open", receivers={"otlp_grpc": PATIENT_GRPC})
    secured = start_daemon(home="secured", receivers={"otlp_grpc": {
        **PATIENT_GRPC, "auth": {"bearer_token": TOKEN}}})
    attackers = [StalledGrpc(open_receiver.grpc, streams=64) for _ in range(3)]
    attackers += [StalledGrpc(secured.grpc, streams=64, authorization=BEARER)
                  for _ in range(3)]
    held += attackers
    assert all(len(a.opened) == 32 for a in attackers)  # the per-connection bound

    unauthenticated = export_calls("grpc", open_receiver.grpc, [f"open {i}" for i in range(20)])
    authenticated = export_calls("grpc", secured.grpc, [f"secured {i}" for i in range(20)],
                                 headers={"authorization": BEARER})

    assert unauthenticated.exporter.failures == 0
    assert authenticated.exporter.failures == 0
    assert len(open_receiver.calls()) == 20 and len(secured.calls()) == 20
    assert all(a.still_stalled() for a in attackers), "the attackers were let go early"


def test_stalled_grpc_streams_end_deadline_exceeded_and_free_their_slots(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(receivers={"otlp_grpc": {
        "message_timeout": "1s", "max_concurrent_rpcs": 32}})
    attacker = StalledGrpc(daemon.grpc, streams=32)
    held.append(attacker)

    outcomes = attacker.outcomes()

    assert set(outcomes.values()) == {DEADLINE_EXCEEDED}
    assert len(outcomes) == 32
    # Every slot of the server's limit was the attacker's; they are free again.
    assert export_calls("grpc", daemon.grpc, ["after the deadline"]).exporter.failures == 0
    assert daemon.metric("driftwatch_receiver_requests_total", transport="grpc",
                         code="DEADLINE_EXCEEDED") == 32


def test_a_grpc_connection_that_never_finishes_its_handshake_is_closed(
        start_daemon, held: list[Any]) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(receivers={"otlp_grpc": {"header_timeout": "1s"}})
    host, _, port = daemon.grpc.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    held.append(sock)
    sock.sendall(b"PRI * HTTP/2.0\r\n")  # half a connection preface, then nothing

    # Returns once the server has closed the connection; raises TimeoutError if it never does.
    what_server_said(sock, timeout_s=60)
