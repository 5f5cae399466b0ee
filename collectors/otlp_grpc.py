"""OTLP/gRPC receiver: TraceService, LogsService and MetricsService on one grpc.aio server.

Overload answers UNAVAILABLE with RetryInfo in both trailer keys exporters read:
`grpc-status-details-bin` (a google.rpc.Status, read by Go and most clients) and
`google.rpc.retryinfo-bin` (read by the Python exporter). Undecodable or malformed requests
answer INVALID_ARGUMENT; over the size cap gRPC itself answers RESOURCE_EXHAUSTED. A call
without the configured token ends UNAUTHENTICATED before its message is read, and one whose
message does not arrive within `message_timeout` ends DEADLINE_EXCEEDED
(`collectors.grpc_guard`); each connection may hold `max_concurrent_streams` calls, and the
server `max_concurrent_rpcs` and `max_connections`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc import aio
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as traces

from collectors.config import GrpcReceiverConfig
from collectors.extract import Signal
from collectors.grpc_guard import BearerInterceptor, MessageLate, MessageMissing, first_message
from collectors.ingest import Ingestor
from monitor.core.endpoints import Listener, split_endpoint
from monitor.core.errors import IngestError, Overloaded, StoreError
from monitor.core.metrics import SelfMetrics
from monitor.core.tokens import TokenSource

log = logging.getLogger(__name__)


class OtlpGrpcReceiver:
    """The gRPC transport; all work past decoding is the shared `Ingestor`'s."""

    def __init__(self, config: GrpcReceiverConfig, ingestor: Ingestor, metrics: SelfMetrics, *,
                 retry_after_s: float) -> None:
        self._config = config
        self._ingestor = ingestor
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        # re-read when its file changes; a bad read keeps the last good token
        self._token = TokenSource(config.auth, "receivers.otlp_grpc.auth") if config.auth else None
        self.listener = Listener("otlp_grpc", config.endpoint)
        self._server: aio.Server | None = None

    @property
    def address(self) -> str:
        return self.listener.address

    async def start(self) -> None:
        config = self._config
        interceptors = ([BearerInterceptor(self._token, self._count_denied)]
                        if self._token else [])
        server = aio.server(
            options=[("grpc.max_receive_message_length", config.max_body_size),
                     ("grpc.max_send_message_length", 4 << 20),
                     ("grpc.so_reuseport", 0),
                     ("grpc.max_concurrent_streams", config.max_concurrent_streams),
                     ("grpc.max_allowed_incoming_connections", config.max_connections),
                     ("grpc.server_handshake_timeout_ms", _ms(config.header_timeout)),
                     ("grpc.max_connection_idle_ms", _ms(config.idle_timeout))],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
            interceptors=interceptors,
        )
        server.add_generic_rpc_handlers(_handlers(self))
        port = self._add_port(server)
        await server.start()
        self._server = server
        self.listener.bound(port=port, tls=config.tls is not None)
        log.info("OTLP/gRPC receiver listening on %s", self.listener.address)

    def _count_denied(self, method: str) -> None:
        signal = _SIGNAL_OF_METHOD.get(method)
        if signal is not None:
            self._metrics.requests.labels("grpc", signal, "UNAUTHENTICATED").inc()

    def _add_port(self, server: aio.Server) -> int:
        endpoint = self._config.endpoint
        tls = self._config.tls
        port: int
        if tls is None:
            port = server.add_insecure_port(endpoint)
        else:
            creds = grpc.ssl_server_credentials(
                [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())])
            port = server.add_secure_port(endpoint, creds)
        if port == 0 and split_endpoint(endpoint)[1] != 0:
            raise OSError(f"cannot listen on {endpoint}: address in use or not available")
        return port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=5)
            self._server = None

    async def export(self, signal: Signal, requests: AsyncIterator[bytes],
                     context: aio.ServicerContext[Any, Any]) -> Message:
        _, response_type = SERVICES[signal]
        began = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            try:
                body = await first_message(requests, self._config.message_timeout)
                found = await self._ingestor.export(signal, body, "protobuf", "grpc")
            except MessageLate as exc:
                code = grpc.StatusCode.DEADLINE_EXCEEDED
                await context.abort(code, str(exc))
            except Overloaded as exc:
                code = grpc.StatusCode.UNAVAILABLE
                await self._abort_retryable(context, str(exc), exc.retry_after_s)
            except StoreError as exc:
                code = grpc.StatusCode.UNAVAILABLE
                await self._abort_retryable(context, f"store unavailable: {exc}",
                                            self._retry_after_s)
            except (IngestError, MessageMissing) as exc:
                code = grpc.StatusCode.INVALID_ARGUMENT
                await context.abort(code, str(exc))
            return found.answer(signal, response_type())
        finally:
            self._metrics.requests.labels("grpc", signal, code.name).inc()
            self._metrics.request_duration.labels("grpc", signal).observe(
                time.perf_counter() - began)

    @staticmethod
    async def _abort_retryable(context: aio.ServicerContext[Any, Any], message: str,
                               retry_after_s: float) -> None:
        info = error_details_pb2.RetryInfo()
        info.retry_delay.FromNanoseconds(int(retry_after_s * 1e9))
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message)
        status.details.add().Pack(info)
        context.set_trailing_metadata((
            ("google.rpc.retryinfo-bin", info.SerializeToString()),
            ("grpc-status-details-bin", status.SerializeToString()),
        ))
        await context.abort(grpc.StatusCode.UNAVAILABLE, message)


# (service, response type) per signal. Requests arrive as raw bytes and are decoded by the
# ingestor, so a body that does not parse is INVALID_ARGUMENT rather than gRPC's INTERNAL.
SERVICES: dict[Signal, tuple[str, type[Message]]] = {
    "traces": ("opentelemetry.proto.collector.trace.v1.TraceService",
               traces.ExportTraceServiceResponse),
    "logs": ("opentelemetry.proto.collector.logs.v1.LogsService",
             logs.ExportLogsServiceResponse),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.MetricsService",
                metrics_svc.ExportMetricsServiceResponse),
}
_SIGNAL_OF_METHOD: dict[str, Signal] = {
    f"/{service}/Export": signal for signal, (service, _) in SERVICES.items()}


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _handlers(receiver: OtlpGrpcReceiver) -> list[grpc.GenericRpcHandler]:
    # Each Export is unary on the wire. It is served as request-streaming so that its one
    # message is read under a deadline (`collectors.grpc_guard`), not before our code runs.
    handlers = []
    for signal, (service, _) in SERVICES.items():
        async def export(requests: AsyncIterator[bytes], context: aio.ServicerContext[Any, Any],
                         signal: Signal = signal) -> Message:
            return await receiver.export(signal, requests, context)

        handlers.append(grpc.method_handlers_generic_handler(service, {
            "Export": grpc.stream_unary_rpc_method_handler(
                export, request_deserializer=None,
                response_serializer=lambda m: m.SerializeToString()),
        }))
    return handlers
