"""The optional OTLP metric push: every `interval`, what /metrics shows goes to a collector
through the OpenTelemetry SDK's OTLP exporter (gRPC or HTTP/protobuf), on a thread of its own.

The data is read from the daemon's one registry by the PrometheusBridge. A collector that is
down or refuses never blocks ingest and never stops the daemon: each export is counted in
driftwatch_metric_push_exports_total{outcome}, and the log gets one line when the push starts
failing and one when it recovers. Stopping sends a last push, bounded by FLUSH_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry, Counter

from monitor import __version__
from monitor.core.metrics import PREFIX
from monitor.ops.config import OtlpPushConfig
from monitor.ops.prometheus_bridge import PrometheusBridge

log = logging.getLogger(__name__)

#: how long stopping waits for the last push before closing the exporter under it
FLUSH_TIMEOUT_S = 3.0


class OtlpMetricPush:
    """A Component pushing `registry` to the configured collector until stopped."""

    def __init__(self, config: OtlpPushConfig, registry: CollectorRegistry) -> None:
        if config.endpoint is None:
            raise ValueError("metrics.otlp.endpoint: required to push, got: None")
        self._config = config
        self.url = signal_url(config)
        self._bridge = PrometheusBridge(registry, InstrumentationScope("driftwatch", __version__))
        # Resource.create adds telemetry.sdk.* and any OTEL_RESOURCE_ATTRIBUTES beneath these.
        self._resource = Resource.create({
            "service.name": "driftwatch", "service.version": __version__,
            "service.instance.id": str(uuid.uuid4())})
        self._exports = Counter(
            f"{PREFIX}_metric_push_exports_total", "OTLP metric pushes by outcome",
            ["outcome"], registry=registry)
        for outcome in ("success", "failure"):
            self._exports.labels(outcome)  # exported at 0, so rate() works from the start
        self._exporter: MetricExporter | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._quiet = _ExporterLogs()
        self._failing: bool | None = None  # None until the first export
        self._failures = 0

    async def start(self) -> None:
        self._exporter = _exporter(self._config, self.url)
        self._quiet.attach()
        self._thread = threading.Thread(target=self._run, name="metric-push", daemon=True)
        self._quiet.thread = self._thread
        self._thread.start()
        log.info("pushing metrics to %s (%s) every %gs", self.url, self._config.protocol,
                 self._config.interval)

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._exporter is None:
            return
        self._stopping.set()
        await asyncio.to_thread(thread.join, FLUSH_TIMEOUT_S)
        if thread.is_alive():
            log.warning("the last metric push to %s took over %gs; abandoned", self.url,
                        FLUSH_TIMEOUT_S)
        self._exporter.shutdown()  # ends a retry back-off or call still going
        self._quiet.detach()

    def _run(self) -> None:
        while not self._stopping.wait(self._config.interval):
            self._push()
        self._push()  # the last one: what changed since the previous push

    def _push(self) -> None:
        exporter = self._exporter
        if exporter is None:
            return
        self._quiet.first = None
        try:
            data = MetricsData(resource_metrics=[ResourceMetrics(
                resource=self._resource, scope_metrics=[self._bridge.produce()],
                schema_url="")])
            result = exporter.export(data, timeout_millis=self._config.timeout * 1000)
            reason = self._quiet.first or "the exporter reported a failure"
        except Exception as exc:  # a failing read or encode must not end the push thread
            result, reason = MetricExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        self._outcome(result is MetricExportResult.SUCCESS, reason)

    def _outcome(self, ok: bool, reason: str) -> None:
        self._exports.labels("success" if ok else "failure").inc()
        if ok:
            if self._failing:
                log.info("metric push to %s recovered after %d failed exports", self.url,
                         self._failures)
            elif self._failing is None:
                log.info("metric push to %s: first export succeeded", self.url)
            self._failures = 0
        else:
            self._failures += 1
            if not self._failing:
                log.warning("metric push to %s failing (retried every %gs): %s", self.url,
                            self._config.interval, reason)
        self._failing = not ok


def signal_url(config: OtlpPushConfig) -> str:
    """Where exports go: for HTTP, an endpoint without a path gets /v1/metrics (as with
    OTEL_EXPORTER_OTLP_ENDPOINT); gRPC takes the endpoint as given."""
    endpoint = config.endpoint or ""
    if config.protocol == "http/protobuf" and urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/metrics"
    return endpoint


def _exporter(config: OtlpPushConfig, url: str) -> MetricExporter:
    tls = config.tls
    if config.protocol == "grpc":
        import grpc
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcExporter,
        )

        secure = urlsplit(url).scheme == "https"
        credentials = None
        if secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file if tls else None),
                private_key=_read(tls.key_file if tls else None),
                certificate_chain=_read(tls.cert_file if tls else None))
        # Only the host:port of the endpoint reaches the channel; https:// selects TLS.
        return GrpcExporter(endpoint=url, insecure=not secure, credentials=credentials,
                            headers=dict(config.headers), timeout=config.timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpExporter,
    )

    def path(value: Path | None) -> str | None:
        return None if value is None else str(value)

    return HttpExporter(
        endpoint=url, headers=dict(config.headers), timeout=config.timeout,
        certificate_file=path(tls.ca_file if tls else None),
        client_certificate_file=path(tls.cert_file if tls else None),
        client_key_file=path(tls.key_file if tls else None))


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


class _ExporterLogs(logging.Filter):
    """Holds back the OTLP exporters' own log lines (a warning per retry, an error per failed
    export) while the push thread exports, keeping the first as the reason the push logs once
    per change of state. With this module at DEBUG they pass through as well."""

    _LOGGERS = ("opentelemetry.exporter.otlp.proto.grpc.exporter",
                "opentelemetry.exporter.otlp.proto.http.metric_exporter")

    def __init__(self) -> None:
        super().__init__()
        self.thread: threading.Thread | None = None
        self.first: str | None = None

    def attach(self) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).addFilter(self)

    def detach(self) -> None:
        for name in self._LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.thread is None or threading.get_ident() != self.thread.ident:
            return True
        if self.first is None:
            self.first = record.getMessage()
        return log.isEnabledFor(logging.DEBUG)
