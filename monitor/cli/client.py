"""A small client of the daemon's ops API, for the CLI (`status`, `jobs run`, `baseline`)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from monitor.config import Config


class OpsError(Exception):
    """The daemon could not be reached, or answered with an error (its message kept)."""


class OpsClient:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 600.0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._tls = tls

    @classmethod
    def from_config(cls, config: Config, url: str | None = None) -> OpsClient:
        token = config.ops.auth.token() if config.ops.auth else None
        tls = config.ops.tls
        scheme = "https" if tls else "http"
        return cls(url or f"{scheme}://{config.ops.endpoint}", token=token,
                   tls=trusting(tls.cert_file) if tls else None)

    def get(self, path: str, **params: str | None) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return self._request("GET", path + (f"?{query}" if query else ""))

    def post(self, path: str, body: Any = None) -> Any:
        return self._request("POST", path, body)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        if method == "POST" and body is None:
            body = {}  # the server takes state changes as JSON only
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers,
                                         method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s,
                                        context=self._tls) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("error") or raw.decode(errors="replace")
            except (ValueError, AttributeError):
                message = raw.decode(errors="replace")
            raise OpsError(f"{self.url} answered {exc.code}: {message}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OpsError(f"cannot reach the daemon at {self.url} ({reason}); is "
                           "`driftwatch run` running? Use --ops URL to name another") from None


def trusting(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts the system's roots and the daemon's own certificate (the
    one its config names), so that a self-signed ops certificate works from the same host."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(cert_file))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself as an anchor
    return context
