"""Clients that open connections and streams and then stall, as the issues' probes did: raw
sockets for HTTP/1.1, raw HTTP/2 frames (the `h2` package) for gRPC, so the stall is real and
nothing in a client library finishes or times out the request for them."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events

TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _address(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.removeprefix("http://").rpartition(":")
    return host, int(port)


def open_http(endpoint: str, sent: bytes = b"") -> socket.socket:
    """A connection to the HTTP receiver that has sent `sent` and then nothing more."""
    sock = socket.create_connection(_address(endpoint), timeout=30)
    if sent:
        sock.sendall(sent)
    return sock


def slow_body_head(announced: int = 64 << 20) -> bytes:
    """The head of an export that announces `announced` bytes, and the first byte of them."""
    return (f"POST /v1/traces HTTP/1.1\r\nHost: receiver\r\n"
            f"Content-Type: application/x-protobuf\r\nContent-Length: {announced}\r\n\r\n"
            ).encode() + b"\x0a"


SLOW_HEAD = b"POST /v1/traces HTTP/1.1\r\nHost: rec"  # a head cut off mid-header


def is_open(sock: socket.socket) -> bool:
    """True while the server has neither answered nor closed the connection."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" for a close
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def what_server_said(sock: socket.socket, timeout_s: float = 60) -> bytes:
    """Everything the server sent until it closed the connection ("" for a bare close)."""
    sock.settimeout(timeout_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


@dataclass
class StalledGrpc:
    """One HTTP/2 connection with `streams` Export calls that each announce a `announced`
    byte message and send one byte of it, as many as the server's SETTINGS allow."""

    endpoint: str
    streams: int
    authorization: str | None = None
    announced: int = 1 << 20
    sock: socket.socket = field(init=False)
    conn: h2.connection.H2Connection = field(init=False)
    ended: dict[int, str] = field(default_factory=dict)  # stream id -> grpc-status or "reset"
    opened: list[int] = field(default_factory=list)
    settled: bool = False  # the server's SETTINGS have arrived

    def __post_init__(self) -> None:
        self.sock = socket.create_connection(_address(self.endpoint), timeout=30)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self._flush()
        self._read_until(lambda: self.settled)
        allowed = self.conn.remote_settings.max_concurrent_streams
        for _ in range(min(self.streams, allowed)):
            self._open_stream()
        self._flush()

    def _open_stream(self) -> None:
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "http"), (":path", TRACE_EXPORT),
                   (":authority", self.endpoint), ("content-type", "application/grpc"),
                   ("te", "trailers")]
        if self.authorization:
            headers.append(("authorization", self.authorization))
        self.conn.send_headers(sid, headers)
        # gRPC's message prefix: not compressed, then the length; then one byte of it.
        self.conn.send_data(sid, b"\x00" + self.announced.to_bytes(4, "big") + b"\x0a")
        self.opened.append(sid)

    def _flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def _read_until(self, done: object, timeout_s: float = 60) -> None:
        self.sock.settimeout(timeout_s)
        while not done():  # type: ignore[operator]
            data = self.sock.recv(65536)
            if not data:
                for sid in self.opened:
                    self.ended.setdefault(sid, "closed")
                return
            self._handle(self.conn.receive_data(data))
            self._flush()

    def _handle(self, events: list[h2.events.Event]) -> None:
        for event in events:
            if isinstance(event, h2.events.TrailersReceived | h2.events.ResponseReceived):
                status = dict(event.headers or []).get("grpc-status")
                if status is not None:  # trailers-only responses carry it in the headers
                    self.ended[event.stream_id] = str(status)
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.settled = True
            elif isinstance(event, h2.events.StreamReset):
                self.ended.setdefault(event.stream_id, "reset")

    def still_stalled(self) -> bool:
        """No stream answered yet (reads whatever the server has sent so far)."""
        self.sock.setblocking(False)
        try:
            while data := self.sock.recv(65536):
                self._handle(self.conn.receive_data(data))
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)
        return not self.ended

    def outcomes(self, timeout_s: float = 60) -> dict[int, str]:
        """Wait until every opened stream has ended; its grpc-status (or how it ended)."""
        self._read_until(lambda: set(self.opened) <= set(self.ended), timeout_s)
        return self.ended

    def close(self) -> None:
        self.sock.close()
