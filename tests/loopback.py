"""A real HTTP server on 127.0.0.1 for the test doubles of outside services (notification
receivers, OTLP collectors, embedding APIs): each says what it answers to a POST, this
serves it on threads, with TLS when given a certificate."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    method: str = "POST"


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """Serves `handle` for every POST (and GET) until closed; `url` is where (http or
    https)."""

    def __init__(self, handle: Callable[[Request], Reply],
                 tls: tuple[Path, Path] | None = None) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._reply(handle(Request(self.path, dict(self.headers), body)))

            def do_GET(self) -> None:
                self._reply(handle(Request(self.path, dict(self.headers), b"", "GET")))

            def _reply(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        scheme = "http"
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class Scripted:
    """A handler that answers its replies in order, then `default` for ever, and keeps
    every request with the time.monotonic() it arrived."""

    def __init__(self, *replies: Reply, default: Reply) -> None:
        self.replies = list(replies)
        self.default = default
        self.requests: list[tuple[float, Request]] = []
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append((time.monotonic(), request))
            return self.replies.pop(0) if self.replies else self.default


@contextmanager
def scripted(*replies: Reply, default: Reply = Reply(200, b'{"ok": true}')
             ) -> Iterator[tuple[str, Scripted]]:
    """A LoopbackServer answering `replies`, then `default`: (its URL, the script)."""
    script = Scripted(*replies, default=default)
    server = LoopbackServer(script)
    try:
        yield server.url, script
    finally:
        server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
