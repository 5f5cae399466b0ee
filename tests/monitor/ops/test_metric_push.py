"""The OTLP metric push: a real daemon pushing to a loopback collector over HTTP/protobuf and
gRPC, compared with its own /metrics; failing collectors; the final push on SIGTERM; config."""

from __future__ import annotations

import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE

from monitor import __version__
from monitor.config import load_config
from monitor.core.errors import ConfigError
from monitor.ops.genai_metrics import DURATION_BUCKETS
from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, get, wait_for
from tests.monitor.ops.metric_sinks import (
    HttpMetricSink,
    MetricSink,
    as_samples,
    find,
    parse_exposition,
    sink_for,
)

# Jobs off, so that nothing changes between a scrape and the next push but the push itself.
QUIET = {"latency": {"enabled": False}, "alerts": {"enabled": False}}
# Changes with every push or every moment: compared by presence, not value (the free space
# moves with whatever else writes on the filesystem).
MOVING = ("process_", "driftwatch_metric_push_exports", "driftwatch_store_filesystem_free_bytes")


def push_to(sink: MetricSink, protocol: str, **extra: Any) -> dict[str, Any]:
    return {"metrics": {"otlp": {"endpoint": sink.endpoint, "protocol": protocol,
                                 "interval": "1s", **extra}}, **QUIET}


def send_chats(daemon: Daemon, durations_s: list[float]) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    now = time.time_ns()
    for i, seconds in enumerate(durations_s):
        app.chat(f"question {i}", "answer", start_ns=now - 120 * 10**9, duration_s=seconds)
    app.flush()
    app.shutdown()


def stored(request: Any) -> float:
    points = find(request, "driftwatch_llm_calls_stored").sum.data_points
    return points[0].as_double if points else 0.0


@pytest.fixture
def sinks() -> Iterator[Callable[..., MetricSink]]:
    """Loopback collectors; a test names this before start_daemon, so that its daemons stop
    (with their last push) before the collectors close."""
    opened: list[MetricSink] = []

    def open_sink(protocol: str, tls: tuple[Path, Path] | None = None) -> MetricSink:
        opened.append(sink_for(protocol, tls))
        return opened[-1]

    yield open_sink
    for sink in opened:
        sink.close()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_push_carries_every_series_and_value_of_the_scrape(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon],
        protocol: str) -> None:
    sink = sinks(protocol)
    daemon = start_daemon(**push_to(sink, protocol))
    send_chats(daemon, [0.005, 0.03, 0.5])
    wait_for(lambda: (latest := sink.latest()) is not None and stored(latest) == 3)

    scraped = parse_exposition(get(daemon.ops + "/metrics")[1])
    pushed = as_samples(sink.next_after(sink.count()))

    # Every pushed sum and histogram has a start time; /metrics shows it (as _created) only
    # where prometheus_client keeps one.
    start_only = {key for key in pushed if key[0].endswith("_created") and key not in scraped}
    assert set(pushed) - start_only == set(scraped)
    steady = {key for key in scraped if not key[0].startswith(MOVING)}
    assert {key: pushed[key] for key in steady} == pytest.approx(
        {key: scraped[key] for key in steady}, rel=1e-12)
    assert scraped[("driftwatch_store_calls", ())] == 3  # a gauge read at scrape time
    assert ("driftwatch_spans_accepted_total", (("transport", "http"),)) in pushed


def test_counters_are_monotonic_sums_and_histograms_keep_their_buckets(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon]) -> None:
    sink = sinks("http/protobuf")
    daemon = start_daemon(**push_to(sink, "http/protobuf"))
    send_chats(daemon, [0.005, 0.03, 0.03, 0.5, 3.0, 100.0])
    request = wait_for(lambda: (r := sink.latest()) is not None and stored(r) == 6 and r)

    counter = find(request, "driftwatch_llm_calls_stored")
    assert counter.sum.is_monotonic
    assert counter.sum.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
    (point,) = counter.sum.data_points
    assert 0 < point.start_time_unix_nano < point.time_unix_nano
    with pytest.raises(AssertionError):
        find(request, "driftwatch_llm_calls_stored_total")

    duration = find(request, "gen_ai_client_operation_duration_seconds").histogram
    assert duration.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
    (h,) = duration.data_points
    assert list(h.explicit_bounds) == list(DURATION_BUCKETS)
    #                          0.01   0.04           0.64        5.12            > 81.92
    assert list(h.bucket_counts) == [1, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1]
    assert h.count == 6 and h.sum == pytest.approx(103.565)
    assert not h.HasField("min") and not h.HasField("max")
    labels = {a.key: a.value.string_value for a in h.attributes}
    assert labels == {"service_name": "support-bot", "gen_ai_provider_name": "openai",
                      "gen_ai_request_model": "gpt-4o-mini", "gen_ai_operation_name": "chat",
                      "error_type": ""}


def test_the_resource_names_driftwatch_its_version_and_instance(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon]) -> None:
    sink = sinks("grpc")
    start_daemon(**push_to(sink, "grpc", headers={"X-Tenant": "team-a"}))
    request = sink.next_after(0)

    (resource_metrics,) = request.resource_metrics
    resource = {a.key: a.value.string_value for a in resource_metrics.resource.attributes}
    assert resource["service.name"] == "driftwatch"
    assert resource["service.version"] == __version__
    assert uuid.UUID(resource["service.instance.id"])
    assert [s.scope.name for s in resource_metrics.scope_metrics] == ["driftwatch"]
    assert sink.headers[0]["x-tenant"] == "team-a"


def test_sigterm_sends_a_last_push_with_the_final_counts(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon]) -> None:
    sink = sinks("http/protobuf")
    daemon = start_daemon(**push_to(sink, "http/protobuf", interval="1h"))
    send_chats(daemon, [0.1, 0.2])
    assert sink.count() == 0

    assert daemon.stop(signal.SIGTERM) == 0

    (request,) = sink.requests
    assert stored(request) == 2


def test_an_unreachable_collector_leaves_ingest_working_and_is_logged_once(
        start_daemon: Callable[..., Daemon]) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    daemon = start_daemon(metrics={"otlp": {"endpoint": f"http://127.0.0.1:{port}",
                                            "protocol": "grpc", "interval": "1s",
                                            "timeout": "1s"}})
    send_chats(daemon, [0.1] * 5)

    assert len(daemon.calls()) == 5
    wait_for(lambda: daemon.metric("driftwatch_metric_push_exports_total",
                                   outcome="failure") >= 3)
    assert daemon.metric("driftwatch_metric_push_exports_total", outcome="success") == 0
    began = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - began < 10
    log = (daemon.log_path or Path()).read_text()
    assert len(re.findall(r"metric push to .* failing", log)) == 1, log
    assert "opentelemetry.exporter" not in log  # the exporter's own lines, one per try


def test_a_refusing_collector_is_logged_when_it_fails_and_when_it_recovers(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon]) -> None:
    sink = sinks("http/protobuf")
    assert isinstance(sink, HttpMetricSink)
    sink.status = 400
    daemon = start_daemon(**push_to(sink, "http/protobuf"))
    wait_for(lambda: daemon.metric("driftwatch_metric_push_exports_total",
                                   outcome="failure") >= 2)

    sink.status = 200
    sink.next_after(0)
    daemon.stop()

    log = (daemon.log_path or Path()).read_text()
    (failing,) = re.findall(r".*metric push to .* failing.*", log)
    assert "400" in failing
    assert len(re.findall(r"metric push to .* recovered after \d+ failed exports", log)) == 1


def test_sigterm_does_not_wait_on_a_collector_that_never_answers(
        start_daemon: Callable[..., Daemon]) -> None:
    with socket.socket() as silent:  # accepts connections, never reads or answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        daemon = start_daemon(metrics={"otlp": {
            "endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}", "interval": "1h",
            "timeout": "30s"}})
        send_chats(daemon, [0.1])

        began = time.monotonic()
        assert daemon.stop(signal.SIGTERM) == 0
        assert time.monotonic() - began < 8
    assert "took over 3s; abandoned" in (daemon.log_path or Path()).read_text()



@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_an_https_collector_is_trusted_through_ca_file(
        sinks: Callable[..., MetricSink], start_daemon: Callable[..., Daemon],
        certificate: tuple[Path, Path], protocol: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # requests would let these override the exporter's own certificate_file
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    sink = sinks(protocol, certificate)
    start_daemon(**push_to(sink, protocol, tls={"ca_file": str(certificate[0])}))

    assert sink.next_after(0).resource_metrics


def config_error(tmp_path: Path, otlp: dict[str, Any]) -> str:
    path = tmp_path / "driftwatch.yaml"
    path.write_text(yaml.safe_dump({"metrics": {"otlp": otlp}}))
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    return str(err.value)


def test_the_push_is_off_until_an_endpoint_is_set() -> None:
    assert load_config(None, environ={}).metrics.otlp.endpoint is None
    config = load_config(None, environ={
        "DRIFTWATCH_METRICS__OTLP__ENDPOINT": "https://collector.example:4318",
        "DRIFTWATCH_METRICS__OTLP__HEADERS__AUTHORIZATION": "Bearer abc"})
    otlp = config.metrics.otlp
    assert otlp.endpoint == "https://collector.example:4318"
    assert otlp.protocol == "http/protobuf"
    assert (otlp.interval, otlp.timeout) == (60.0, 10.0)
    assert otlp.headers == {"authorization": "Bearer abc"}


@pytest.mark.parametrize(("otlp", "message"), [
    ({"endpoint": "collector:4317"},
     "metrics.otlp.endpoint: expected a URL like http://otel-collector:4318, "
     "got: 'collector:4317'"),
    ({"endpoint": "http://collector:99999"}, "got: 'http://collector:99999'"),
    ({"endpoint": "http://c:4317", "protocol": "http/json"},
     "metrics.otlp.protocol: Input should be 'grpc' or 'http/protobuf', got: 'http/json'"),
    ({"endpoint": "http://c:4317/v1/metrics", "protocol": "grpc"},
     "metrics.otlp: endpoint: a gRPC endpoint has no path, got: 'http://c:4317/v1/metrics'"),
    ({"endpoint": "http://c:4318", "tls": {}},
     "metrics.otlp: tls: needs an https:// endpoint, got: 'http://c:4318'"),
    ({"endpoint": "https://c:4318", "tls": {"ca_file": "/no/such/ca.pem"}},
     "metrics.otlp.tls.ca_file: no such file, got: '/no/such/ca.pem'"),
    ({"interval": 0}, "metrics.otlp.interval: Input should be greater than 0, got: 0"),
    ({"headers": {"bad header": "x"}},
     "metrics.otlp.headers: expected header names like authorization, got: 'bad header'"),
    ({"intervall": "30s"}, "metrics.otlp.intervall: unknown key"),
])
def test_bad_push_settings_are_refused_naming_key_and_value(
        tmp_path: Path, otlp: dict[str, Any], message: str) -> None:
    assert message in config_error(tmp_path, otlp)
