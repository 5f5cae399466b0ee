"""Bearer-token auth on receivers and the ops API, and TLS on both receivers."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, get, raw_request

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"auth": {"bearer_token": TOKEN}}


@pytest.fixture
def secured(start_daemon) -> Daemon:  # type: ignore[no-untyped-def]
    return start_daemon(receivers={"otlp_grpc": AUTH, "otlp_http": AUTH}, ops=AUTH)  # type: ignore[no-any-return]


def test_receivers_refuse_exports_without_the_token(secured: Daemon) -> None:
    status, _, _ = raw_request("POST", secured.http + "/v1/traces", b"{}",
                               {"Content-Type": "application/json"})
    assert status == 401
    channel = grpc.insecure_channel(secured.grpc)
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                 request_serializer=lambda b: b,
                                 response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as err:
        export(b"", timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    channel.close()


def test_exporters_with_the_token_are_accepted(secured: Daemon) -> None:
    header = {"authorization": f"Bearer {TOKEN}"}
    for protocol, endpoint in (("grpc", secured.grpc), ("http", secured.http)):
        app = LLMApp(otlp_exporter(protocol, endpoint, headers=header))
        app.chat(f"sent over {protocol}", "ok")
        app.flush()
        app.shutdown()
        assert app.exporter.failures == 0
    assert sorted(c["prompt"] for c in secured.calls()) == ["sent over grpc", "sent over http"]


def test_ops_api_needs_the_token_but_probes_stay_open(secured: Daemon) -> None:
    assert get(secured.ops + "/healthz")[0] == 200
    assert get(secured.ops + "/readyz")[0] == 200
    assert get(secured.ops + "/metrics")[0] == 401
    assert get(secured.ops + "/api/v1/calls")[0] == 401
    status, body = get(secured.ops + "/api/v1/calls", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and json.loads(body) == {"calls": []}



def test_receivers_serve_tls_to_exporters_that_trust_the_certificate(
        start_daemon, certificate: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # requests lets these variables override the exporter's own certificate_file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = certificate
    tls = {"tls": {"cert_file": str(cert), "key_file": str(key)}}
    daemon = start_daemon(receivers={"otlp_grpc": tls, "otlp_http": tls})
    grpc_app = LLMApp(otlp_exporter(
        "grpc", daemon.grpc, insecure=False,
        credentials=grpc.ssl_channel_credentials(cert.read_bytes())))
    http_app = LLMApp(otlp_exporter("http", "https://" + daemon.endpoints["otlp_http"],
                                    certificate_file=str(cert)))
    for name, app in (("grpc", grpc_app), ("http", http_app)):
        app.chat(f"over tls {name}", "ok")
        app.flush()
        app.shutdown()
        assert app.exporter.failures == 0, name
    assert sorted(c["prompt"] for c in daemon.calls()) == ["over tls grpc", "over tls http"]
