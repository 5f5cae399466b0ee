"""One HTTP client for everything driftwatch sends out: alerts to their receivers, texts to
a remote embeddings server, the CLI's requests to the daemon's ops API and its replays into
an OTLP/HTTP receiver.

`HttpSender` sends one request with bounded retries: a request that gets no answer, or one
of the policy's retryable statuses (408, 429 and 5xx by default), is tried again after an
exponential backoff, or after the server's Retry-After (delta-seconds or an HTTP date) where
it sent one, never longer than `max_backoff_s`. Any other status is final at once. What
finally fails is an `HttpError` carrying the status (0: no answer), a bounded copy of the
body and the Retry-After. Redirects are not followed: an API that answers 3xx is configured
with the wrong URL, and following it would hand our bearer token to another host.

Waiting goes through a `Clock`, so a daemon's stop event cuts a backoff short.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import math
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Literal, Protocol

from monitor import __version__
from monitor.core.errors import DriftwatchError

USER_AGENT = f"driftwatch/{__version__}"
#: 408 Request Timeout, 429 Too Many Requests and every 5xx: the only answers worth repeating
RETRYABLE = frozenset({408, 429, *range(500, 600)})
_ERROR_BODY_BYTES = 64 * 1024  # of an error's body, kept (a protobuf Status, a JSON error)
_EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How hard one request is tried.

    `long_retry_after`: what a Retry-After over `max_backoff_s` does: "cap" waits
    `max_backoff_s` and tries again; "give_up" ends the retries at once (the HttpError
    carries the Retry-After, so a caller that can hold off, like a notifier, does).
    `budget_s`: no retry starts later than this many seconds after the first attempt.
    """

    attempts: int = 4  # tries, the first included
    backoff_s: float = 1.0  # before the first retry; doubles each time
    max_backoff_s: float = 30.0  # the longest wait, a Retry-After included
    timeout_s: float = 10.0  # per request (connect, and each read)
    statuses: frozenset[int] = RETRYABLE
    unanswered: bool = True  # retry a request that got no answer (refused, reset, timed out)
    long_retry_after: Literal["cap", "give_up"] = "cap"
    budget_s: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts: must be at least 1, got: {self.attempts}")
        if not 0 <= self.backoff_s <= self.max_backoff_s:
            raise ValueError(f"backoff_s: must be between 0 and max_backoff_s "
                             f"({self.max_backoff_s:g}), got: {self.backoff_s:g}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s: must be positive, got: {self.timeout_s:g}")


class HttpError(DriftwatchError):
    """A request that failed for good: `status` is the last answer's code, or 0 when no
    answer came (`reason` says why); `body` is at most 64 KiB of that answer."""

    def __init__(self, url: str, *, status: int = 0, body: bytes = b"", reason: str = "",
                 retry_after_s: float | None = None) -> None:
        self.url = url
        self.status = status
        self.body = body
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.attempts = 1
        super().__init__(self._message())

    @property
    def where(self) -> str:
        """scheme://host[:port] of the URL: its path or query may hold a secret (Slack's
        webhook URLs do), so messages and logs name only this."""
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "the server"

    @property
    def excerpt(self) -> str:
        """The start of the answer's body as one line of text."""
        text = " ".join(self.body[:_EXCERPT_CHARS * 4].decode(errors="replace").split())
        return text[:_EXCERPT_CHARS]

    def _message(self) -> str:
        if self.status:
            return f"{self.where} answered {self.status}" + (
                f": {self.excerpt}" if self.body else "")
        return f"{self.where}: no answer ({self.reason})"

    def __str__(self) -> str:
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return self._message() + tries


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A 2xx answer; header names are lower-cased."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON (None for an empty body).

        :raises HttpError: the body is not JSON.
        """
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(self.url, status=self.status, body=self.body[:_ERROR_BODY_BYTES],
                            reason=f"the body is not JSON: {exc}") from None


class Clock(Protocol):
    """Time for retries: `sleep` returns False when cut short (the caller is stopping)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> bool: ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    """The real clock; a set `stopping` event ends any sleep at once."""

    stopping: threading.Event = field(default_factory=threading.Event)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> bool:
        return not self.stopping.wait(seconds)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects)


class HttpSender:
    """Sends requests under one RetryPolicy, with `headers` (a token, say) on every one.
    Thread-safe; `retries` counts the retries it made."""

    def __init__(self, policy: RetryPolicy | None = None, *, clock: Clock | None = None,
                 headers: Mapping[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.policy = policy or RetryPolicy()
        self._clock = clock or SystemClock()
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        # https with a context of its own (a self-signed daemon), else the system's roots
        self._opener = (_OPENER if ssl_context is None else urllib.request.build_opener(
            _NoRedirects, urllib.request.HTTPSHandler(context=ssl_context)))
        self._lock = threading.Lock()
        self.retries = 0

    def send_json(self, method: str, url: str, payload: Any,
                  headers: Mapping[str, str] | None = None) -> HttpResponse:
        """`payload` as a JSON body (ASCII, so even a lone surrogate travels).

        :raises HttpError: as `request`.
        """
        body = json.dumps(payload).encode()
        return self.request(method, url, body=body,
                            headers={"Content-Type": "application/json", **(headers or {})})

    def get_json(self, url: str) -> Any:
        """GET `url` and decode its JSON. :raises HttpError: as `request`, or not JSON."""
        return self.request("GET", url, headers={"Accept": "application/json"}).json()

    def request(self, method: str, url: str, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpResponse:
        """Send until a 2xx answer, a final status, or the policy's end.

        :raises HttpError: the last failure, with how many attempts were made.
        :raises ValueError: `url` is not http(s).
        """
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"expected an http(s) URL, got: {url!r}")
        began = self._clock.monotonic()
        delay = self.policy.backoff_s
        attempt = 1
        while True:
            try:
                return self._once(method, url, body, {**self._headers, **(headers or {})})
            except HttpError as exc:
                exc.attempts = attempt
                wait = self._wait(exc, delay, began)
                if wait is None or not self._clock.sleep(wait):
                    raise
            with self._lock:
                self.retries += 1
            attempt += 1
            delay = min(delay * 2, self.policy.max_backoff_s)

    def _wait(self, error: HttpError, delay: float, began: float) -> float | None:
        """Seconds to wait before trying again, or None to give up."""
        policy = self.policy
        retryable = (error.status in policy.statuses if error.status else policy.unanswered)
        if not retryable or error.attempts >= policy.attempts:
            return None
        wait = delay if error.retry_after_s is None else error.retry_after_s
        if wait > policy.max_backoff_s:
            if policy.long_retry_after == "give_up":
                return None
            wait = policy.max_backoff_s
        if (policy.budget_s is not None
                and self._clock.monotonic() + wait - began > policy.budget_s):
            return None
        return wait

    def _once(self, method: str, url: str, body: bytes | None,
              headers: Mapping[str, str]) -> HttpResponse:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
        try:
            with self._opener.open(request, timeout=self.policy.timeout_s) as response:
                data = response.read()
                return HttpResponse(url, response.status, _lower(response.headers), data)
        except urllib.error.HTTPError as exc:
            with exc:
                data = exc.read(_ERROR_BODY_BYTES)
            raise HttpError(url, status=exc.code, body=data,
                            retry_after_s=retry_after_s(exc.headers.get("Retry-After"),
                                                        now=self._clock.time())) from None
        except urllib.error.URLError as exc:
            raise HttpError(url, reason=str(exc.reason)) from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad answers
            raise HttpError(url, reason=str(exc) or type(exc).__name__) from None


def _lower(headers: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def retry_after_s(value: str | None, *, now: float) -> float | None:
    """Seconds from a Retry-After header, delta-seconds or an HTTP date (`now` in unix
    seconds); None when absent or unreadable. Never negative."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
