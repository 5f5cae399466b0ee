"""Bearer-token auth on receivers and the ops API (failing closed, scoped on the ops API),
TLS on the receivers and the ops server, and secrets kept out of what the CLI prints."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli, get, raw_request, write_config

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
    assert status == 200 and json.loads(body)["calls"] == []



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


# -- auth that fails closed ---------------------------------------------------------------


@pytest.mark.parametrize("secret, says", [
    ("", "a token is required"),
    ("  \n\t \n", "a token is required"),
    ("x", "a token needs at least 16 characters, got: 1"),
    ("short-secret\n", "a token needs at least 16 characters, got: 12"),
])
@pytest.mark.parametrize("section", ["ops", "otlp_http"])
def test_a_token_file_without_a_usable_token_is_refused_by_validate_and_at_start(
        tmp_path: Path, section: str, secret: str, says: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(secret)
    auth = {"auth": {"bearer_token_file": str(token_file)}}
    config = write_config(tmp_path, **({"ops": auth} if section == "ops"
                                       else {"receivers": {"otlp_http": auth}}))
    field = ("ops" if section == "ops" else "receivers.otlp_http") + ".auth.bearer_token_file"

    for command in ("validate", "run"):
        args = (command, str(config)) if command == "validate" else (command, "--config",
                                                                    str(config))
        done = cli(*args, check=False)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"{field}: {token_file} holds no usable token: {says}" in done.stderr, command
        assert "listening" not in done.stdout


@pytest.mark.parametrize("auth, says", [
    ({}, "ops.auth: set bearer_token or bearer_token_file (exactly one)"),
    ({"bearer_token": " " * 20}, "ops.auth.bearer_token: a token is required"),
    ({"bearer_token": "has spaces in the middle"}, "ops.auth.bearer_token: a token is one word"),
])
def test_an_auth_section_without_a_usable_inline_token_is_refused(
        tmp_path: Path, auth: dict[str, str], says: str) -> None:
    done = cli("validate", str(write_config(tmp_path, ops={"auth": auth})), check=False)
    assert done.returncode == 2
    assert says in done.stderr
    assert "spaces in the middle" not in done.stderr  # a refused token is not echoed


def test_an_emptied_token_file_keeps_the_last_good_token_and_a_new_one_takes_over(
        start_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "ops-token"
    token_file.write_text(TOKEN + "\n")
    daemon = start_daemon(ops={"auth": {"bearer_token_file": str(token_file)}})
    calls = daemon.ops + "/api/v1/calls"

    token_file.write_text("")  # a rotation caught half-way
    assert get(calls)[0] == 401
    assert get(calls, {"Authorization": f"Bearer {TOKEN}"})[0] == 200

    rotated = "rotated-token-0123456789abcdef"
    token_file.write_text(rotated)
    assert get(calls, {"Authorization": f"Bearer {rotated}"})[0] == 200
    assert get(calls, {"Authorization": f"Bearer {TOKEN}"})[0] == 401
    assert daemon.log_path is not None
    assert "keeping the last good token" in daemon.log_path.read_text()


def test_the_receivers_follow_their_token_file_and_an_emptied_one_never_turns_auth_off(
        start_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token_file = tmp_path / "receiver-token"
    token_file.write_text(TOKEN + "\n")
    auth = {"auth": {"bearer_token_file": str(token_file)}}
    daemon = start_daemon(receivers={"otlp_grpc": auth, "otlp_http": auth})

    def exports(token: str | None) -> dict[str, int]:
        """How many of one call per protocol failed to export with this token."""
        header = {"authorization": f"Bearer {token}"} if token else None
        failures = {}
        for protocol, endpoint in (("grpc", daemon.grpc), ("http", daemon.http)):
            app = LLMApp(otlp_exporter(protocol, endpoint, headers=header))
            app.chat(f"sent over {protocol} with {token}", "ok")
            app.flush()
            app.shutdown()
            failures[protocol] = app.exporter.failures
        return failures

    token_file.write_text("")  # a rotation caught half-way
    assert exports(None) == {"grpc": 1, "http": 1}
    assert exports(TOKEN) == {"grpc": 0, "http": 0}

    rotated = "rotated-token-0123456789abcdef"
    token_file.write_text(rotated)
    assert exports(TOKEN) == {"grpc": 1, "http": 1}
    assert exports(rotated) == {"grpc": 0, "http": 0}
    assert len(daemon.calls()) == 4


def test_the_daemon_says_at_start_which_listeners_require_a_token(
        start_daemon, secured: Daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(home="open")
    assert secured.log_path is not None and daemon.log_path is not None
    secured_log = secured.log_path.read_text()
    assert "otlp_grpc: bearer token required" in secured_log
    assert "otlp_http: bearer token required" in secured_log
    assert "bearer token required for /metrics and /api (ops.auth: admin)" in secured_log
    open_log = daemon.log_path.read_text()
    assert "otlp_http: no token required (receivers.otlp_http.auth unset)" in open_log
    assert "no token required (ops.auth unset)" in open_log


# -- scoped tokens ---------------------------------------------------------------------------

METRICS_TOKEN = "prometheus-scrape-token-0123456789"
READ_TOKEN = "read-only-token-0123456789abcdef"


def test_each_token_opens_only_its_scope(start_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    metrics_file = tmp_path / "metrics-token"
    metrics_file.write_text(METRICS_TOKEN)
    daemon = start_daemon(ops={"auth": {"bearer_token": TOKEN, "read": {
        "bearer_token": READ_TOKEN}, "metrics": {"bearer_token_file": str(metrics_file)}}})
    pin = json.dumps({"service": "s", "from": "-2h", "to": "-1h"}).encode()

    def answers(token: str | None) -> dict[str, int]:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return {
            "metrics": get(daemon.ops + "/metrics", auth)[0],
            "calls": get(daemon.ops + "/api/v1/calls", auth)[0],
            "pin": raw_request("POST", daemon.ops + "/api/v1/baselines", pin,
                               {**auth, "Content-Type": "application/json"})[0],
        }

    assert answers(METRICS_TOKEN) == {"metrics": 200, "calls": 403, "pin": 403}
    assert answers(READ_TOKEN) == {"metrics": 200, "calls": 200, "pin": 403}
    assert answers(TOKEN) == {"metrics": 200, "calls": 200, "pin": 201}
    assert answers(None) == {"metrics": 401, "calls": 401, "pin": 401}
    assert answers("someone-elses-token-0123456789") == {"metrics": 401, "calls": 401,
                                                         "pin": 401}
    body = get(daemon.ops + "/api/v1/calls", {"Authorization": f"Bearer {METRICS_TOKEN}"})[1]
    assert json.loads(body)["error"] == ("this token's scope is metrics; GET /api/v1/calls "
                                         "needs read")


def test_one_token_for_two_scopes_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, ops={"auth": {"bearer_token": TOKEN,
                                                  "metrics": {"bearer_token": TOKEN}}})
    done = cli("validate", str(config), check=False)
    assert done.returncode == 2
    assert "ops.auth: metrics: the same token as the admin token" in done.stderr
    assert TOKEN not in done.stderr


# -- TLS on the ops server -------------------------------------------------------------------


def test_the_ops_server_serves_tls_and_the_cli_trusts_its_certificate(
        start_daemon, certificate: tuple[Path, Path]) -> None:  # type: ignore[no-untyped-def]
    cert, key = certificate
    daemon = start_daemon(ops={"tls": {"cert_file": str(cert), "key_file": str(key)},
                               "auth": {"bearer_token": TOKEN}})
    assert daemon.ops.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(cert))
    with urllib.request.urlopen(daemon.ops + "/readyz", context=context, timeout=10) as answer:
        assert json.loads(answer.read())["status"] == "ready"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(daemon.ops + "/readyz", timeout=10)  # the system's roots only

    done = cli("jobs", "run", "retention", "--config", str(daemon.config_path), "--ops",
               daemon.ops, "--json")
    assert json.loads(done.stdout.splitlines()[0])["deleted_calls"] == 0


# -- secrets stay secret ---------------------------------------------------------------------


def test_validate_json_shows_where_secrets_are_but_not_what_they_are(tmp_path: Path) -> None:
    metrics_file = tmp_path / "metrics-token"
    metrics_file.write_text(METRICS_TOKEN)
    secrets = {"grpc": "grpc-token-0123456789abcdef", "ops": TOKEN,
               "embedding": "sk-embedding-api-key", "pagerduty": "pagerduty-routing-key",
               "slack": "https://hooks.slack.com/services/T0/B0/slack-webhook-secret",
               "push": "Bearer push-header-secret"}
    config = write_config(
        tmp_path, receivers={"otlp_grpc": {"auth": {"bearer_token": secrets["grpc"]}}},
        ops={"auth": {"bearer_token": secrets["ops"],
                      "metrics": {"bearer_token_file": str(metrics_file)}}},
        embedding={"remote": {"url": "http://tei:8080", "model": "m",
                              "api_key": secrets["embedding"]}},
        alerts={"notifiers": {"pagerduty": [{"routing_key": secrets["pagerduty"]}],
                              "slack": [{"url": secrets["slack"]}]}},
        metrics={"otlp": {"endpoint": "http://collector:4318",
                          "headers": {"Authorization": secrets["push"]}}})

    shown = cli("validate", "--json", str(config)).stdout
    effective = json.loads(shown)

    for name, secret in secrets.items():
        assert secret not in shown, name
    assert METRICS_TOKEN not in shown
    assert effective["ops"]["auth"]["bearer_token"] == "***"
    assert effective["ops"]["auth"]["metrics"]["bearer_token_file"] == str(metrics_file)
    assert effective["alerts"]["notifiers"]["pagerduty"][0]["routing_key"] == "***"
    assert effective["metrics"]["otlp"]["headers"] == {"authorization": "***"}
