"""Loopback OTLP metric receivers (HTTP/protobuf and gRPC) that keep every export request, and
the OTLP -> Prometheus mapping used to compare what arrived with a /metrics scrape."""

from __future__ import annotations

import gzip
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from tests.loopback import LoopbackServer, Reply, Request

#: (sample name, sorted label items), as both sides are compared
SampleKey = tuple[str, tuple[tuple[str, str], ...]]


class MetricSink:
    """What a collector received: every request, in order, with its headers or metadata."""

    endpoint: str

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def record(self, request: ExportMetricsServiceRequest, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append(request)
            self.headers.append(headers)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def latest(self) -> ExportMetricsServiceRequest | None:
        with self._lock:
            return self.requests[-1] if self.requests else None

    def next_after(self, seen: int, timeout: float = 20.0) -> ExportMetricsServiceRequest:
        """The first request after the `seen` first ones, waiting for it."""
        deadline = time.monotonic() + timeout
        while self.count() <= seen:
            if time.monotonic() > deadline:
                raise AssertionError(f"no push after the first {seen} within {timeout}s")
            time.sleep(0.05)
        with self._lock:
            return self.requests[seen]

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> MetricSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpMetricSink(MetricSink):
    """POST /v1/metrics with an ExportMetricsServiceRequest body (gzip allowed); answers
    `status` (200 by default) and 404 elsewhere."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__()
        self.status = 200
        self._server = LoopbackServer(self._handle, tls)
        self.endpoint = self._server.url

    def _handle(self, request: Request) -> Reply:
        if request.path != "/v1/metrics":
            return Reply(404)
        body = request.body
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        status = self.status
        if status == 200:
            self.record(ExportMetricsServiceRequest.FromString(body),
                        {k.lower(): v for k, v in request.headers.items()})
        return Reply(status, ExportMetricsServiceResponse().SerializeToString(),
                     {"Content-Type": "application/x-protobuf"})

    def close(self) -> None:
        self._server.close()


class GrpcMetricSink(MetricSink):
    """The OTLP MetricsService on a real gRPC server."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__()
        sink = self

        class Service(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: ExportMetricsServiceRequest,
                       context: grpc.ServicerContext) -> ExportMetricsServiceResponse:
                sink.record(request, dict(context.invocation_metadata()))  # type: ignore[arg-type]
                return ExportMetricsServiceResponse()

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Service(), self._server)
        if tls is None:
            port = self._server.add_insecure_port("127.0.0.1:0")
            self.endpoint = f"http://127.0.0.1:{port}"
        else:
            credentials = grpc.ssl_server_credentials([(tls[1].read_bytes(), tls[0].read_bytes())])
            port = self._server.add_secure_port("127.0.0.1:0", credentials)
            self.endpoint = f"https://127.0.0.1:{port}"
        self._server.start()

    def close(self) -> None:
        self._server.stop(grace=None)


def sink_for(protocol: str, tls: tuple[Path, Path] | None = None) -> MetricSink:
    return GrpcMetricSink(tls) if protocol == "grpc" else HttpMetricSink(tls)


def find(request: ExportMetricsServiceRequest, name: str) -> Metric:
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == name:
                    return metric
    raise AssertionError(f"{name} was not pushed")


def as_samples(request: ExportMetricsServiceRequest) -> dict[SampleKey, float]:
    """The request as Prometheus samples, by the OTel spec's OTLP -> Prometheus mapping:
    monotonic sums get `_total` (and `_created` from their start time), histograms
    `_bucket{le}` (cumulative), `_count`, `_sum` and `_created`."""
    out: dict[SampleKey, float] = {}

    def put(name: str, attributes: Any, value: float, **extra: str) -> None:
        labels = {a.key: a.value.string_value for a in attributes} | extra
        out[(name, tuple(sorted(labels.items())))] = value

    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for m in scope_metrics.metrics:
                kind = m.WhichOneof("data")
                if kind == "gauge":
                    for p in m.gauge.data_points:
                        put(m.name, p.attributes, p.as_double)
                elif kind == "sum":
                    assert m.sum.is_monotonic, m.name
                    for p in m.sum.data_points:
                        put(m.name + "_total", p.attributes, p.as_double)
                        put(m.name + "_created", p.attributes, p.start_time_unix_nano / 1e9)
                elif kind == "histogram":
                    for h in m.histogram.data_points:
                        below = 0
                        for bound, n in zip([*h.explicit_bounds, float("inf")],
                                            h.bucket_counts, strict=True):
                            below += n
                            put(m.name + "_bucket", h.attributes, below,
                                le=floatToGoString(bound))
                        put(m.name + "_count", h.attributes, h.count)
                        put(m.name + "_sum", h.attributes, h.sum)
                        put(m.name + "_created", h.attributes, h.start_time_unix_nano / 1e9)
                else:
                    raise AssertionError(f"{m.name}: unexpected {kind}")
    return out


def parse_exposition(text: str) -> dict[SampleKey, float]:
    """A /metrics page as samples, read by prometheus_client's own parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
