"""The ops HTTP server: probes, Prometheus metrics and the JSON API the CLI talks to.

/healthz and /readyz stay open for orchestrators; who may ask for the rest (the Host it is
addressed by, requests a browser was made to send, the token's scope) is `monitor.ops.access`.
Bad query parameters get 400 with a message naming the parameter; a store that fails gets
503 without its path (the log has it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.alerting.engine import AlertEngine
from monitor.core.components import CallQuery, CallSink, Store
from monitor.core.endpoints import Listener, bind_socket, server_ssl_context
from monitor.core.errors import StoreError
from monitor.core.metrics import SelfMetrics
from monitor.core.records import DetectorResult, Direction, LLMCall
from monitor.core.timeparse import TimeParseError, parse_time
from monitor.jobs.canary.comparer import Comparer
from monitor.jobs.plugin import DetectorPlugin
from monitor.jobs.scheduler import JobScheduler, UnknownJob
from monitor.jobs.segments import SegmentWatch
from monitor.ops import compare, reports
from monitor.ops.access import FEEDBACK_PATH, OpsAccess
from monitor.ops.config import OpsConfig
from monitor.ops.feedback import FeedbackApi
from monitor.store.history import Baseline, SqliteHistory

log = logging.getLogger(__name__)

# /api/v1/calls: the most calls one request may ask for (`limit`), what it gets without
# one, and the rows read from the store at a time while the answer streams.
MAX_CALLS_PER_REQUEST = 100_000
DEFAULT_CALLS = 10_000
CALLS_PAGE = 500


@dataclass(frozen=True, slots=True)
class OpsDeps:
    metrics: SelfMetrics
    store: Store
    history: SqliteHistory
    jobs: JobScheduler
    listeners: tuple[Listener, ...]  # receivers that must be bound for /readyz
    alerts: AlertEngine | None = None  # None: alerting is turned off
    detectors: Mapping[str, DetectorPlugin[Any, Any]] = field(default_factory=dict)
    segments: SegmentWatch | None = None  # which segments the detectors watch
    #: where POST /api/v1/feedback commits its evaluations (the ingest writer); None: 503
    sink: CallSink | None = None
    comparer: Comparer | None = None  # None: no /api/v1/compare


class OpsServer:
    def __init__(self, config: OpsConfig, deps: OpsDeps) -> None:
        self._config = config
        self._deps = deps
        # reads the tokens now: one that is unusable fails the start
        self.access = OpsAccess(config, deps.metrics.registry)
        self.listener = Listener("ops", config.endpoint)
        self._runner: web.AppRunner | None = None
        self._not_ready: list[str] = []

    async def start(self) -> None:
        app = web.Application(middlewares=[self.access.middleware, self._store_errors])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/api/v1/calls", self._calls)
        app.router.add_get("/api/v1/jobs", self._jobs)
        app.router.add_post("/api/v1/jobs/{name}/run", self._run_job)
        app.router.add_get("/api/v1/results", self._results)
        app.router.add_get("/api/v1/results/series", self._series)
        app.router.add_get("/api/v1/results/{id}", self._result)
        app.router.add_get("/api/v1/baselines", self._baselines)
        app.router.add_post("/api/v1/baselines", self._set_baseline)
        app.router.add_get("/api/v1/alerts", self._alerts)
        app.router.add_get("/api/v1/rules", self._rules)
        app.router.add_post(FEEDBACK_PATH, self._feedback)
        if self._deps.comparer is not None:  # before /reports/{detector}/{id}
            app.add_routes(compare.routes(self._deps.comparer))
        app.add_routes(reports.routes(self._deps.history, self._deps.detectors))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = bind_socket(self._config.endpoint)
        tls = server_ssl_context(self._config.tls) if self._config.tls else None
        await web.SockSite(self._runner, sock, shutdown_timeout=2, ssl_context=tls).start()
        self.listener.bound(sock, tls=tls is not None)
        log.info("ops server listening on %s: %s", self.listener.url, self.access.describe())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _store_errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreError as exc:  # any endpoint that reads or writes the store
            log.warning("%s %s: store %s: %s", request.method, request.path,
                        self._deps.history.path, exc)
            return _error(503, f"store unavailable: {exc}")

    async def _feedback(self, request: web.Request) -> web.Response:
        if self._deps.sink is None:
            return _error(503, "feedback is not taken: this server has no ingest writer")
        api = FeedbackApi(self._deps.sink, self._deps.store, self._deps.metrics, time.time_ns)
        return await api.post(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = [f"{lst.name} not listening" for lst in self._deps.listeners if not lst.ready]
        try:
            await asyncio.to_thread(self._deps.store.check_writable)
        except StoreError as exc:
            problems.append(f"store not writable: {exc}")
        if problems != self._not_ready:  # said once per change, not once per probe
            if problems:
                log.warning("not ready: %s (store %s)", "; ".join(problems),
                            self._deps.history.path)
            else:
                log.info("ready")
            self._not_ready = problems
        if problems:
            return web.json_response({"status": "not ready", "problems": problems}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self._deps.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _calls(self, request: web.Request) -> web.StreamResponse:
        try:
            query = calls_query(dict(request.query), now_ns=time.time_ns())
        except ValueError as exc:
            return _error(400, str(exc))
        asked = query.limit or DEFAULT_CALLS
        # One more than asked: whether the limit cut the answer short, said at its end.
        pages = self._deps.store.call_pages(replace(query, limit=asked + 1), CALLS_PAGE)
        page: list[LLMCall] = await asyncio.to_thread(next, pages, [])  # failing: a 503
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"calls": [')
        sent = fetched = 0
        while page:
            fetched += len(page)
            rows = [json.dumps(c.to_json(), ensure_ascii=False) for c in page[: asked - sent]]
            if rows:
                await response.write(((", " if sent else "") + ", ".join(rows)).encode())
                sent += len(rows)
            page = await asyncio.to_thread(next, pages, [])
        end = {"limit": asked, "max_limit": MAX_CALLS_PER_REQUEST, "truncated": fetched > asked}
        await response.write(f"], {json.dumps(end)[1:]}".encode())
        await response.write_eof()
        return response

    async def _jobs(self, request: web.Request) -> web.Response:
        return web.json_response({"jobs": self._deps.jobs.names})

    async def _run_job(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            result = await self._deps.jobs.run_now(name)
        except UnknownJob as exc:
            return _error(404, str(exc.args[0]))
        except Exception as exc:  # the job's own failure is the answer, not a server error
            log.exception("job %r run on request failed", name)
            return _error(500, f"job {name!r} failed: {exc}")
        return web.json_response({"job": name, "result": _jsonable(result)})

    async def _results(self, request: web.Request) -> web.Response:
        try:
            params = _only(dict(request.query), {"detector", "service"})
        except ValueError as exc:
            return _error(400, str(exc))
        results = await asyncio.to_thread(
            self._deps.history.latest, detector=params.get("detector"),
            service=params.get("service"))
        answer: dict[str, Any] = {"results": [r.to_json() for r in results]}
        if self._deps.segments is not None:
            answer["segments"] = self._deps.segments.counts.to_json()
        return web.json_response(answer)

    async def _series(self, request: web.Request) -> web.Response:
        try:
            params = _only(dict(request.query),
                           {"detector", "service", "model", "direction", "evaluation", "limit"})
            for required in ("detector", "service"):
                if not params.get(required):
                    raise ValueError(f"{required}: required")
            direction = params.get("direction")
            if direction is not None and direction not in {d.value for d in Direction}:
                raise ValueError(f"direction: expected prompt or completion, got: {direction!r}")
            limit = _int_param(params, "limit", default=100, high=10_000)
        except ValueError as exc:
            return _error(400, str(exc))
        results = await asyncio.to_thread(
            self._deps.history.recent, detector=params["detector"], service=params["service"],
            model=params.get("model") or None,
            direction=Direction(direction) if direction else None, limit=limit,
            evaluation=params.get("evaluation") or None)
        return web.json_response({"results": [r.to_json() for r in results]})

    async def _result(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        if not text.isdigit():
            return _error(400, f"id: expected a result number, got: {text!r}")
        result = await asyncio.to_thread(self._deps.history.result, int(text))
        if result is None:
            return _error(404, f"no result {text}")
        return web.json_response(result.to_json())

    async def _baselines(self, request: web.Request) -> web.Response:
        baselines = await asyncio.to_thread(self._deps.history.baselines)
        return web.json_response({"baselines": [b.to_json() for b in baselines]})

    async def _set_baseline(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body: expected a JSON object with service, model, from, to")
        try:
            baseline = baseline_from(body, now_ns=time.time_ns())
        except ValueError as exc:
            return _error(400, str(exc))
        pinned = await asyncio.to_thread(self._deps.history.set_baseline, baseline)
        log.info("baseline pinned for %s/%s: %s", pinned.service, pinned.model or "*",
                 pinned.to_json())
        return web.json_response(pinned.to_json(), status=201)

    async def _alerts(self, request: web.Request) -> web.Response:
        """Alerts kept in the store: pending, firing, and resolved ones still being sent."""
        try:
            params = _only(dict(request.query), {"alertname", "state"})
            state = params.get("state")
            if state is not None and state not in ("pending", "firing", "resolved"):
                raise ValueError(f"state: expected pending, firing or resolved, got: {state!r}")
        except ValueError as exc:
            return _error(400, str(exc))
        engine = self._deps.alerts
        if engine is None:
            return web.json_response({"alerts": [], "enabled": False})

        def read() -> list[dict[str, Any]]:
            deliveries = engine.state.deliveries()
            return [a.to_json([d for (fp, _), d in deliveries.items() if fp == a.fingerprint])
                    for a in engine.state.alerts()
                    if params.get("alertname") in (None, a.alertname)
                    and state in (None, a.state)]

        return web.json_response({"alerts": await asyncio.to_thread(read), "enabled": True})

    async def _rules(self, request: web.Request) -> web.Response:
        engine = self._deps.alerts
        rules = [] if engine is None else [
            {"name": rule.name, **rule.config.model_dump(mode="json", by_alias=True)}
            for rule in engine.rules]
        return web.json_response({"rules": rules})


def baseline_from(body: Any, *, now_ns: int) -> Baseline:
    """A pinned Baseline from an API body; ValueError names the bad field and value."""
    if not isinstance(body, dict):
        raise ValueError(f"body: expected a JSON object, got: {type(body).__name__}")
    unknown = sorted(set(body) - {"service", "model", "from", "to"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field; fields are service, model, from, to")
    service, model = body.get("service"), body.get("model")
    if not isinstance(service, str) or not service:
        raise ValueError(f"service: expected a service name, got: {service!r}")
    if model is not None and (not isinstance(model, str) or not model):
        raise ValueError(f"model: expected a model name or null, got: {model!r}")
    times = {}
    for key in ("from", "to"):
        value = body.get(key)
        if not isinstance(value, str):
            raise ValueError(f"{key}: expected RFC 3339 or relative like -2h, got: {value!r}")
        try:
            times[key] = parse_time(value, now_ns=now_ns)
        except TimeParseError as exc:
            raise ValueError(f"{key}: {exc}") from None
    if times["to"] <= times["from"]:
        raise ValueError(f"to: must be after from, got: {body['from']!r} to {body['to']!r}")
    if times["to"] > now_ns:
        raise ValueError(f"to: a baseline must lie in the past, got: {body['to']!r}")
    return Baseline(service=service, model=model, start_ns=times["from"], end_ns=times["to"],
                    source="pinned")


def _only(params: dict[str, str], known: set[str]) -> dict[str, str]:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
    return params


def _int_param(params: dict[str, str], key: str, *, default: int, high: int) -> int:
    text = params.get(key, str(default))
    if not text.isdigit() or not 1 <= int(text) <= high:
        raise ValueError(f"{key}: expected 1 to {high}, got: {text!r}")
    return int(text)


def calls_query(params: dict[str, str], *, now_ns: int) -> CallQuery:
    """A CallQuery from API parameters; ValueError names the bad parameter and value."""
    known = {"service", "model", "since", "until", "limit", "order"}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(known))}")
    since = _time_param(params, "since", now_ns)
    until = _time_param(params, "until", now_ns)
    limit_text = params.get("limit", str(DEFAULT_CALLS))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_CALLS_PER_REQUEST:
        raise ValueError(f"limit: expected 1 to {MAX_CALLS_PER_REQUEST} (the most one "
                         f"request may ask for), got: {limit_text[:40]!r}")
    order = params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise ValueError(f"order: expected asc or desc, got: {order!r}")
    return CallQuery(service=params.get("service"), model=params.get("model"), since_ns=since,
                     until_ns=until, limit=int(limit_text), newest_first=order == "desc")


def _time_param(params: dict[str, str], key: str, now_ns: int) -> int | None:
    if key not in params:
        return None
    try:
        return parse_time(params[key], now_ns=now_ns)
    except TimeParseError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _jsonable(value: Any) -> Any:
    """A job's return value as JSON: detector results in their public shape."""
    if isinstance(value, list) and all(isinstance(v, DetectorResult) for v in value):
        return [v.to_json() for v in value]
    return json.loads(json.dumps(value, default=str))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)
