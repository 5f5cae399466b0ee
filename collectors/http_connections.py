"""The OTLP/HTTP receiver's connections: how many may be open, and how long each may dawdle.

aiohttp reads a request's head for as long as the client takes, so a client that opens
connections and sends a byte now and then would hold them, and the file descriptors behind
them, forever. Every connection here goes through `ConnectionGuard`, which wraps aiohttp's
own protocol and gives each connection one timer:

- from its first byte (or from the connection opening), the request line and headers must
  arrive within `header_timeout`;
- while a request is being handled the timer is off (the body has its own minimum rate,
  `collectors.http_body`);
- between requests a keep-alive connection may sit idle for `idle_timeout`.

Past `max_connections` open at once a new connection is answered 503 with Retry-After and
closed before anything of it is read, the way an exporter expects an overloaded receiver to
answer. Each cut is counted by why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import Counter

from monitor.core.metrics import PREFIX, SelfMetrics

_State = str  # "head" | "busy" | "idle"


class GuardedConnection(asyncio.Protocol):
    """Passes everything to aiohttp's protocol for one connection, and times it."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._state: _State = "head"
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard.admit(self):
            transport.write(self._guard.busy_response)
            transport.close()
            return
        self._admitted = True
        self._inner.connection_made(transport)
        self._arm(self._guard.header_timeout_s, "header_timeout")

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._state == "idle":  # the first bytes of the next request's head
            self._state = "head"
            self._arm(self._guard.header_timeout_s, "header_timeout")
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._admitted:
            self._guard.release(self)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def request_started(self) -> None:
        self._state = "busy"
        self._disarm()

    def request_finished(self) -> None:
        self._state = "idle"
        self._arm(self._guard.idle_timeout_s, "idle_timeout")

    def _arm(self, delay_s: float, reason: str) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay_s, self._cut, reason)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut(self, reason: str) -> None:
        self._timer = None
        self._guard.count_cut(reason)
        if self._transport is not None:
            self._transport.abort()


class ConnectionGuard:
    """Admits connections up to a bound and cuts the ones that stall; one per receiver."""

    def __init__(self, *, max_connections: int, header_timeout_s: float, idle_timeout_s: float,
                 retry_after: str, metrics: SelfMetrics) -> None:
        self.max_connections = max_connections
        self.header_timeout_s = header_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.busy_response = (
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + retry_after + "\r\n"
            "Content-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\n"
            "too many connections\r\n\r\n").encode()
        self._open: dict[Any, GuardedConnection] = {}
        self._cuts = Counter(
            f"{PREFIX}_receiver_http_connections_cut_total", "OTLP/HTTP connections closed by "
            "the receiver, by why: header_timeout, idle_timeout, body_timeout (a body slower "
            "than body_min_rate) or max_connections (refused on arrival)", ["reason"],
            registry=metrics.registry)
        metrics.watch("receiver_http_open_connections", "OTLP/HTTP connections open now",
                      lambda: float(len(self._open)))

    def protocol_factory(self, make_inner: Callable[[], asyncio.Protocol]
                         ) -> Callable[[], GuardedConnection]:
        """What `loop.create_server` is given in place of aiohttp's own factory."""
        return lambda: GuardedConnection(make_inner(), self)

    def admit(self, connection: GuardedConnection) -> bool:
        if len(self._open) >= self.max_connections:
            self.count_cut("max_connections")
            return False
        self._open[connection._inner] = connection
        return True

    def release(self, connection: GuardedConnection) -> None:
        self._open.pop(connection._inner, None)

    def of(self, request: web.BaseRequest) -> GuardedConnection | None:
        """The guarded connection a request arrived on (None once it has closed)."""
        return self._open.get(request.protocol)

    def count_cut(self, reason: str) -> None:
        self._cuts.labels(reason).inc()
