"""A small client of the daemon's ops API, for the CLI (`status`, `jobs run`, `baseline`).

Requests go through `monitor.core.http`: a daemon that is busy (503 or 429, with its
Retry-After) is asked again, up to 4 attempts and 30 s between them; one that is not
running is reported at once, and no request that may have reached it (a timeout after
sending `jobs run`, a 500 from a failed job) is repeated.
"""

from __future__ import annotations

import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.core.http import Clock, HttpError, HttpSender, RetryPolicy


class OpsError(Exception):
    """The daemon could not be reached, or answered with an error (its message kept)."""


def ops_policy(timeout_s: float = 600.0) -> RetryPolicy:
    """The CLI's retries: only answers that say nothing was done (429, 503)."""
    return RetryPolicy(attempts=4, backoff_s=1.0, max_backoff_s=30.0, timeout_s=timeout_s,
                       statuses=frozenset({429, 503}), unanswered=False)


class OpsClient:
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 600.0,
                 retry: RetryPolicy | None = None, clock: Clock | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = HttpSender(retry or ops_policy(timeout_s), clock=clock, headers=headers,
                                ssl_context=tls)

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
        try:
            if body is None:
                return self._http.request(method, self.url + path).json()
            return self._http.send_json(method, self.url + path, body).json()
        except HttpError as exc:
            raise self._error(exc) from None

    def _error(self, exc: HttpError) -> OpsError:
        if not exc.status:
            return OpsError(f"cannot reach the daemon at {self.url} ({exc.reason}); is "
                            "`driftwatch run` running? Use --ops URL to name another")
        if exc.reason:  # a 2xx that is not JSON: something else listens there
            return OpsError(f"{self.url} answered {exc.status} with no JSON ({exc.excerpt!r});"
                            " is that the daemon's ops endpoint?")
        raw = exc.body.decode(errors="replace")
        try:
            message = json.loads(raw).get("error") or raw
        except (ValueError, AttributeError):
            message = raw
        tries = f" (after {exc.attempts} attempts)" if exc.attempts > 1 else ""
        return OpsError(f"{self.url} answered {exc.status}: {message}{tries}")


def trusting(cert_file: Path) -> ssl.SSLContext:
    """A client context that trusts the system's roots and the daemon's own certificate (the
    one its config names), so that a self-signed ops certificate works from the same host."""
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(cert_file))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself as an anchor
    return context
