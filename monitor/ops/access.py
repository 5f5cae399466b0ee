"""Who may ask the ops server what: the Host it is addressed by, requests a browser was made
to send, and the scope of the bearer token.

Checked in that order, before any handler runs:

1. Host. A name outside `ops.allowed_hosts` gets 421: a page on a DNS-rebound name
   (evil.example resolving to 127.0.0.1) reaches the server under that name, and is
   refused before it can read a stored prompt. The probes answer any Host.
2. State changes. A request that is not GET/HEAD must say `Content-Type: application/json`
   (else 415; the "simple" types a page may send cross-site without asking are refused),
   and must not come from another origin (an `Origin` other than the server's own, or
   `Sec-Fetch-Site` other than same-origin/none, gets 403). The CLI sends neither header.
3. Scope. With `ops.auth` set, /metrics needs a token of scope metrics or wider, other
   reads scope read or wider, anything else (POST) the admin token; a token known but too
   narrow gets 403, an unknown or missing one 401. `POST /api/v1/feedback` also takes the
   feedback token, which may do nothing else (not even read /metrics): an app that sends
   its users' thumbs holds no token that reads stored prompts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import IntEnum
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from monitor.core.auth import bearer_matches
from monitor.core.tokens import TokenSource
from monitor.ops.config import OpsConfig, split_host

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
JSON = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


FEEDBACK_PATH = "/api/v1/feedback"


class Scope(IntEnum):
    """What a token may do; each scope from METRICS up includes the ones below it, and
    FEEDBACK is apart: that one path, which ADMIN may also use."""

    FEEDBACK = 0
    METRICS = 1
    READ = 2
    ADMIN = 3


def needed_scope(request: web.Request) -> Scope:
    if request.method not in SAFE_METHODS:
        return Scope.ADMIN
    return Scope.METRICS if request.path == "/metrics" else Scope.READ


def allows(scope: Scope, request: web.Request) -> bool:
    """Whether a token of `scope` may make the request."""
    if request.method == "POST" and request.path == FEEDBACK_PATH:
        return scope in (Scope.FEEDBACK, Scope.ADMIN)
    return scope is not Scope.FEEDBACK and scope >= needed_scope(request)


class OpsAccess:
    """The three checks as one aiohttp middleware (`middleware`)."""

    def __init__(self, config: OpsConfig, registry: CollectorRegistry) -> None:
        self._refused = Counter(
            "driftwatch_ops_requests_refused_total", "Ops API requests refused before any "
            "handler ran, by reason: host, cross_origin, content_type, token, scope",
            ["reason"], registry=registry)
        self._hosts = config.hosts()
        self._any_host = "*" in self._hosts
        self._allowed = {split_host(h) for h in self._hosts if h != "*"}
        self._tokens: list[tuple[TokenSource, Scope]] = []
        auth = config.auth
        if auth is not None:
            self._tokens.append((TokenSource(auth, "ops.auth"), Scope.ADMIN))
            for name, section, scope in (("read", auth.read, Scope.READ),
                                         ("metrics", auth.metrics, Scope.METRICS),
                                         ("feedback", auth.feedback, Scope.FEEDBACK)):
                if section is not None:
                    self._tokens.append((TokenSource(section, f"ops.auth.{name}"), scope))

    def describe(self) -> str:
        """One line for the start-up log: what the server asks of a request."""
        if not self._tokens:
            auth = "no token required (ops.auth unset)"
        else:
            auth = "bearer token required for /metrics and /api (" + ", ".join(
                f"{source.name}: {scope.name.lower()}" for source, scope in self._tokens) + ")"
        hosts = "any Host" if self._any_host else "Host " + ", ".join(self._hosts)
        return f"{auth}; answers {hosts}"

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = (self._host_refusal(request) or self._browser_refusal(request)
                   or self._token_refusal(request))
        if refusal is not None:
            return refusal
        return await handler(request)

    def _host_refusal(self, request: web.Request) -> web.Response | None:
        if self._any_host or request.path in OPEN_PATHS:
            return None
        given = request.headers.get("Host", "")
        try:
            host, port = split_host(given)
        except ValueError:
            host, port = "", None
        if (host, None) in self._allowed or (host, port) in self._allowed:
            return None
        return self._refuse("host", 421, f"this server does not answer to Host {given!r}; "
                            "the names it answers to are set by ops.allowed_hosts")

    def _browser_refusal(self, request: web.Request) -> web.Response | None:
        if request.method in SAFE_METHODS:
            return None
        site = request.headers.get("Sec-Fetch-Site")
        origin = request.headers.get("Origin")
        if site is not None and site not in ("same-origin", "none"):
            return self._refuse("cross_origin", 403,
                                f"a {site} request may not change state here")
        if origin is not None and not _same_origin(origin, request):
            return self._refuse("cross_origin", 403,
                                f"a request from origin {origin!r} may not change state here")
        if request.content_type != JSON:
            given = request.headers.get("Content-Type", "none")
            return self._refuse("content_type", 415,
                                f"expected Content-Type: {JSON}, got: {given!r}")
        return None

    def _token_refusal(self, request: web.Request) -> web.Response | None:
        if not self._tokens or request.path in OPEN_PATHS:
            return None
        given = request.headers.getall("Authorization", [])
        scope = next((scope for source, scope in self._tokens
                      if bearer_matches(given, source.current())), None)
        if scope is None:
            return self._refuse("token", 401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        if not allows(scope, request):
            needed = ("feedback or admin" if request.path == FEEDBACK_PATH
                      and request.method == "POST" else needed_scope(request).name.lower())
            return self._refuse("scope", 403, f"this token's scope is {scope.name.lower()}; "
                                f"{request.method} {request.path} needs {needed}")
        return None

    def _refuse(self, reason: str, status: int, message: str,
                headers: dict[str, str] | None = None) -> web.Response:
        self._refused.labels(reason).inc()
        return web.json_response({"error": message}, status=status, headers=headers)


def _same_origin(origin: str, request: web.Request) -> bool:
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and parts.netloc.lower() == request.host.lower()
