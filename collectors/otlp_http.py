"""OTLP/HTTP receiver: POST /v1/traces, /v1/logs and /v1/metrics, protobuf or JSON.

Status codes follow the OTLP spec and the Collector: 400 (with a google.rpc.Status body in
the request's encoding) for undecodable bodies, 401 without the configured token, 404/405
for wrong paths and methods, 413 over the size cap (enforced while decompressing, so a gzip
bomb is refused without inflating it), 415 for unknown content types, and 503 with
Retry-After when the ingest queue is full. Success is 200 with partial_success when some
spans were malformed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
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
from collectors.extract import Extracted
from collectors.ingest import Ingestor
from monitor.core.auth import bearer_matches
from monitor.core.endpoints import Listener, bind_socket, server_ssl_context
from monitor.core.errors import BadRequest, IngestError, Overloaded, StoreError, TooLarge
from monitor.core.metrics import SelfMetrics

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


class _Budget:
    """Bytes of request bodies being read at once; refusing past it keeps memory bounded."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0

    def take(self, n: int) -> bool:
        if self.used and self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n


class OtlpHttpReceiver:
    """The HTTP transport; all work past decoding is the shared `Ingestor`'s."""

    def __init__(self, config: HttpReceiverConfig, ingestor: Ingestor, metrics: SelfMetrics, *,
                 max_inflight_bytes: int, retry_after_s: float) -> None:
        self._config = config
        self._ingestor = ingestor
        self._metrics = metrics
        self._budget = _Budget(max_inflight_bytes)
        self._retry_after = str(max(1, round(retry_after_s)))
        token = config.auth.token() if config.auth else None
        self._token = token
        self.listener = Listener("otlp_http", config.endpoint)
        self._runner: web.AppRunner | None = None

    @property
    def address(self) -> str:
        return self.listener.address

    async def start(self) -> None:
        app = web.Application(middlewares=[self._errors_middleware], client_max_size=1 << 40)
        for path in SIGNALS:
            app.router.add_post(path, self._handle)
        # We decompress ourselves, with the cap enforced while inflating (aiohttp would not).
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     auto_decompress=False)
        await self._runner.setup()
        sock = bind_socket(self._config.endpoint)
        ssl = server_ssl_context(self._config.tls) if self._config.tls else None
        await web.SockSite(self._runner, sock, ssl_context=ssl, shutdown_timeout=5).start()
        self.listener.bound(sock, tls=ssl is not None)
        log.info("OTLP/HTTP receiver listening on %s", self.listener.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        signal = SIGNALS[request.path]
        began = time.perf_counter()
        response = await self._respond(request, signal)
        self._metrics.requests.labels("http", signal.name, str(response.status)).inc()
        self._metrics.request_duration.labels("http", signal.name).observe(
            time.perf_counter() - began)
        return response

    async def _respond(self, request: web.Request, signal: Signal) -> web.StreamResponse:
        given = request.headers.getall("Authorization", [])
        if self._token and not bearer_matches(given, self._token):
            return _status_response(401, "missing or wrong bearer token", JSON,
                                    headers={"WWW-Authenticate": "Bearer"})
        media = request.content_type
        if media not in (PROTOBUF, JSON):
            return _status_response(415, f"unsupported content type {media!r}; send "
                                         f"{PROTOBUF} or {JSON}", JSON)
        cap = self._config.max_body_size
        reserve = min(request.content_length or cap, cap)
        if not self._budget.take(reserve):
            return _status_response(503, "too many bodies in flight; retry later", media,
                                    headers={"Retry-After": self._retry_after})
        try:
            found = await self._decode_and_ingest(request, signal, media, cap)
        except IngestError as exc:
            return self._error_response(exc, media)
        except StoreError as exc:
            return _status_response(503, f"store unavailable: {exc}", media,
                                    headers={"Retry-After": self._retry_after})
        finally:
            self._budget.give(reserve)
        return _success(signal, found, media)

    async def _decode_and_ingest(self, request: web.Request, signal: Signal, media: str,
                                 cap: int) -> Extracted:
        body = await _read_body(request, cap)
        return await self._ingestor.export(
            signal.name, body, "protobuf" if media == PROTOBUF else "json", "http")

    def _error_response(self, exc: IngestError, media: str) -> web.Response:
        if isinstance(exc, Overloaded):
            return _status_response(503, str(exc), media,
                                    headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
        if isinstance(exc, TooLarge):
            return _status_response(413, str(exc), media)
        return _status_response(400, str(exc), media)


async def _read_body(request: web.Request, cap: int) -> bytes:
    """The body, decompressed, never more than `cap` bytes on either side of decompression."""
    if request.content_length is not None and request.content_length > cap:
        raise TooLarge(f"body of {request.content_length} bytes is over the {cap}-byte cap")
    chunks, size = [], 0
    # Chunks as the socket delivered them, joined once: no re-chunking, no growing buffer.
    async for chunk in request.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            raise TooLarge(f"body is over the {cap}-byte cap")
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding in ("gzip", "x-gzip"):
        return await asyncio.to_thread(_inflate, raw, zlib.MAX_WBITS | 16, cap)
    if encoding == "deflate":
        # "deflate" is zlib-wrapped by the spec (and the Python exporter) but raw in the wild.
        wbits = zlib.MAX_WBITS if raw[:1] == b"\x78" else -zlib.MAX_WBITS
        return await asyncio.to_thread(_inflate, raw, wbits, cap)
    raise BadRequest(f"unsupported Content-Encoding {encoding!r}; send gzip, deflate or none")


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Decompress at most cap + 1 bytes: a bomb is refused after inflating just past the cap."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, cap + 1)
        if len(out) > cap or inflater.unconsumed_tail:
            raise TooLarge(f"body inflates past the {cap}-byte cap")
        out += inflater.flush()
    except zlib.error as exc:
        raise BadRequest(f"body is not valid compressed data: {exc}") from None
    if not inflater.eof:
        raise BadRequest("compressed body is truncated")
    if len(out) > cap:
        raise TooLarge(f"body inflates past the {cap}-byte cap")
    return out


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
                413: code_pb2.RESOURCE_EXHAUSTED, 415: code_pb2.INVALID_ARGUMENT,
                503: code_pb2.UNAVAILABLE}


def _status_response(status: int, message: str, media: str,
                     headers: dict[str, str] | None = None) -> web.Response:
    body = status_pb2.Status(code=_HTTP_TO_RPC.get(status, code_pb2.UNKNOWN), message=message)
    return web.Response(status=status, body=_encode(body, media), content_type=media,
                        headers=headers)
