"""Listening sockets shared by every server: binding, TLS contexts, and the bound address.

Binding the socket ourselves lets a config ask for port 0 and still report the real port.
"""

from __future__ import annotations

import socket
import ssl

from monitor.core.config import TlsConfig


def split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def bind_socket(endpoint: str) -> socket.socket:
    """A listening TCP socket; an OSError (port in use) names the endpoint."""
    host, port = split_endpoint(endpoint)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {endpoint}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def server_ssl_context(tls: TlsConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


class Listener:
    """Where a server ended up listening (the real port when 0 was asked for)."""

    def __init__(self, name: str, endpoint: str) -> None:
        self.name = name
        self.address = endpoint
        self.scheme = "http"
        self.ready = False

    def bound(self, sock: socket.socket | None = None, *, port: int | None = None,
              tls: bool = False) -> None:
        host, asked = split_endpoint(self.address)
        if sock is not None:
            port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.address = f"{shown}:{port if port is not None else asked}"
        self.scheme = "https" if tls else "http"
        self.ready = True

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}"
