"""OTLP/HTTP receiver: POST /v1/traces, /v1/logs and /v1/metrics, protobuf or JSON.

Status codes follow the OTLP spec and the Collector: 400 (with a google.rpc.Status body in
the request's encoding) for undecodable bodies, 401 without the configured token, 404/405
for wrong paths and methods, 413 over the size cap (enforced while decompressing, so a gzip
bomb is refused without inflating it), 415 for unknown content types, and 503 with
Retry-After when the ingest queue or the body budget is full, 408 for a body that arrives
slower than the minimum rate. Success is 200 with partial_success when some spans were
malformed. Connections are bounded and timed (`collectors.http_connections`), bodies read at
a minimum rate against a budget of bytes received (`collectors.http_body`), and browsers
served CORS as the Collector serves it (`collectors.cors`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_svc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as traces

from collectors import extract
from collectors.config import HttpReceiverConfig
from collectors.cors import CorsPolicy
from collectors.extract import Extracted
from collectors.http_body import BodyBudget, BodyLimits, BodyReader, SlowBody
from collectors.http_connections import ConnectionGuard
from collectors.ingest import Ingestor
from monitor.core.auth import bearer_matches
from monitor.core.endpoints import Listener, bind_socket, server_ssl_context
from monitor.core.errors import IngestError, Overloaded, StoreError, TooLarge
from monitor.core.metrics import SelfMetrics
from monitor.core.tokens import TokenSource

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Signal:
    name: extract.Signal
    response: type[Message]


SIGNALS = {
    "/v1/traces": Signal("traces", traces.ExportTraceServiceResponse),
    "/v1/logs": Signal("logs", logs.ExportLogsServiceResponse),
    "/v1/metrics": Signal("metrics", metrics_svc.ExportMetricsServiceResponse),
}


class OtlpHttpReceiver:
    """The HTTP transport; all work past decoding is the shared `Ingestor`'s."""

    def __init__(self, config: HttpReceiverConfig, ingestor: Ingestor, metrics: SelfMetrics, *,
                 max_inflight_bytes: int, retry_after_s: float) -> None:
        self._config = config
        self._ingestor = ingestor
        self._metrics = metrics
        self._budget = BodyBudget(max_inflight_bytes)
        self._limits = BodyLimits(cap=config.max_body_size, grace_s=config.body_timeout,
                                  min_rate=config.body_min_rate, retry_after_s=retry_after_s)
        self._retry_after = str(max(1, round(retry_after_s)))
        self._guard = ConnectionGuard(
            max_connections=config.max_connections, header_timeout_s=config.header_timeout,
            idle_timeout_s=config.idle_timeout, retry_after=self._retry_after, metrics=metrics)
        self._cors = CorsPolicy(config.cors_allowed_origins, config.cors_allowed_headers,
                                config.cors_max_age)
        # re-read when its file changes; a bad read keeps the last good token
        self._token = TokenSource(config.auth, "receivers.otlp_http.auth") if config.auth else None
        self.listener = Listener("otlp_http", config.endpoint)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return self.listener.address

    async def start(self) -> None:
        app = web.Application(middlewares=[self._connection_middleware,
                                           self._errors_middleware], client_max_size=1 << 40)
        for path in SIGNALS:
            app.router.add_post(path, self._handle)
            if self._cors.enabled:
                app.router.add_route("OPTIONS", path, self._preflight)
        # We decompress ourselves, with the cap enforced while inflating (aiohttp would not).
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, auto_decompress=False,
            keepalive_timeout=self._config.idle_timeout, shutdown_timeout=5)
        await self._runner.setup()
        assert self._runner.server is not None
        sock = bind_socket(self._config.endpoint)
        ssl = server_ssl_context(self._config.tls) if self._config.tls else None
        # Our own listening server in place of aiohttp's site: every connection goes
        # through the guard, which times it and bounds how many are open.
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(self._runner.server), sock=sock, ssl=ssl, backlog=128)
        self.listener.bound(sock, tls=ssl is not None)
        log.info("OTLP/HTTP receiver listening on %s", self.listener.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()  # answers or ends the connections it has
            self._runner = None
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    @web.middleware
    async def _connection_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Stops the head timer while a request is handled, and starts the idle one after."""
        connection = self._guard.of(request)
        if connection is not None:
            connection.request_started()
        try:
            return await handler(request)
        finally:
            if connection is not None:
                connection.request_finished()

    @web.middleware
    async def _errors_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            return _status_response(405, "method not allowed, supported: [POST]", JSON,
                                    headers={"Allow": "POST"})
        except web.HTTPNotFound:
            return _status_response(404, f"unknown path {request.path!r}; OTLP/HTTP serves "
                                         "/v1/traces, /v1/logs and /v1/metrics", JSON)

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        """A browser's CORS preflight: no auth (browsers never send it there), no body."""
        return web.Response(status=204, headers=self._cors.preflight(request.headers))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        signal = SIGNALS[request.path]
        began = time.perf_counter()
        response = await self._respond(request, signal)
        if self._cors.enabled:
            response.headers.update(self._cors.actual(request.headers))
        self._metrics.requests.labels("http", signal.name, str(response.status)).inc()
        self._metrics.request_duration.labels("http", signal.name).observe(
            time.perf_counter() - began)
        return response

    async def _respond(self, request: web.Request, signal: Signal) -> web.StreamResponse:
        given = request.headers.getall("Authorization", [])
        if self._token and not bearer_matches(given, self._token.current()):
            return _status_response(401, "missing or wrong bearer token", JSON,
                                    headers={"WWW-Authenticate": "Bearer"})
        media = request.content_type
        if media not in (PROTOBUF, JSON):
            return _status_response(415, f"unsupported content type {media!r}; send "
                                         f"{PROTOBUF} or {JSON}", JSON)
        reader = BodyReader(self._budget, self._limits)
        try:
            body = await reader.read(request)
            found = await self._ingestor.export(
                signal.name, body, "protobuf" if media == PROTOBUF else "json", "http")
        except SlowBody as exc:
            self._guard.count_cut("body_timeout")
            response = _status_response(408, str(exc), media)
            response.force_close()
            return response
        except IngestError as exc:
            return self._error_response(exc, media)
        except StoreError as exc:
            return _status_response(503, f"store unavailable: {exc}", media,
                                    headers={"Retry-After": self._retry_after})
        finally:
            reader.release()
        return _success(signal, found, media)

    def _error_response(self, exc: IngestError, media: str) -> web.Response:
        if isinstance(exc, Overloaded):
            return _status_response(503, str(exc), media,
                                    headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
        if isinstance(exc, TooLarge):
            response = _status_response(413, str(exc), media)
            response.force_close()  # rather than read the rest of what is too large
            return response
        return _status_response(400, str(exc), media)


def _encode(message: Message, media: str) -> bytes:
    if media == PROTOBUF:
        wire: bytes = message.SerializeToString()
        return wire
    text: str = json_format.MessageToJson(message, indent=None)
    return text.encode()


def _success(signal: Signal, found: Extracted, media: str) -> web.Response:
    response = found.answer(signal.name, signal.response())
    return web.Response(status=200, body=_encode(response, media), content_type=media)


_HTTP_TO_RPC = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED,
                404: code_pb2.NOT_FOUND, 405: code_pb2.UNIMPLEMENTED,
                408: code_pb2.DEADLINE_EXCEEDED,
                413: code_pb2.RESOURCE_EXHAUSTED, 415: code_pb2.INVALID_ARGUMENT,
                503: code_pb2.UNAVAILABLE}


def _status_response(status: int, message: str, media: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    body = status_pb2.Status(code=_HTTP_TO_RPC.get(status, code_pb2.UNKNOWN), message=message)
    return web.Response(status=status, body=_encode(body, media), content_type=media,
                        headers=headers)
