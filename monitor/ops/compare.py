"""`POST /api/v1/compare`, `GET /api/v1/compare/{id}` and the page `/reports/compare/{id}`.

A comparison reads capped samples of two sides of a service and scores their completions,
seconds of CPU at most; one runs at a time (the next waits its turn), on a worker thread.
The request is JSON: `service`, `a` and `b` (`KEY=VALUE`), and optionally `since` (default
1h) and `until` (default now), RFC 3339 or relative. A bad field gets 400 naming it; an
unknown service or an empty side 404, with the values that do exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from html import escape
from typing import Any

from aiohttp import web

from monitor.core.timeparse import TimeParseError, parse_time
from monitor.jobs.canary.comparer import CompareError, Comparer, NothingToCompare, parse_selector
from monitor.ops.markup import num, table
from monitor.ops.reports import error_page, html_page, section

log = logging.getLogger(__name__)

FIELDS = frozenset({"service", "a", "b", "since", "until"})
MAX_SERVICE_CHARS = 256


def routes(comparer: Comparer) -> list[web.RouteDef]:
    """Registered before the detectors' `/reports/{detector}/{id}`, which it would match."""
    api = CompareApi(comparer)
    return [web.post("/api/v1/compare", api.create), web.get("/api/v1/compare/{id}", api.show),
            web.get("/reports/compare/{id}", api.page)]


class CompareApi:
    def __init__(self, comparer: Comparer) -> None:
        self._comparer = comparer
        self._one_at_a_time = asyncio.Lock()

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "body: expected a JSON object with service, a, b, since, until")
        try:
            service, a, b, since, until = self._parse(body)
        except CompareError as exc:
            return _error(400, str(exc))
        async with self._one_at_a_time:
            try:
                found = await asyncio.to_thread(
                    self._comparer.run, service, a, b, since_ns=since, until_ns=until)
            except NothingToCompare as exc:
                return _error(404, str(exc.args[0]))
            except CompareError as exc:
                return _error(400, str(exc))
        log.info("compared %s: %s vs %s: %s", service, a.text, b.text, found["verdict"])
        return web.json_response(found, status=201)

    def _parse(self, body: Any) -> tuple[str, Any, Any, int, int]:
        if not isinstance(body, dict):
            raise CompareError(f"body: expected a JSON object, got: {type(body).__name__}")
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            raise CompareError(f"{unknown[0][:80]}: unknown field; fields are "
                               f"{', '.join(sorted(FIELDS))}")
        service = body.get("service")
        if not isinstance(service, str) or not service or len(service) > MAX_SERVICE_CHARS:
            raise CompareError(f"service: expected a service name, got: {str(service)[:80]!r}")
        variant = self._comparer.variant_attribute
        a = parse_selector("a", body.get("a"), variant)
        b = parse_selector("b", body.get("b"), variant)
        now = time.time_ns()
        since = _time(body, "since", "1h", now)
        until = _time(body, "until", None, now)
        if until <= since:
            raise CompareError(f"until: must be after since, got: {body.get('since')!r} to "
                               f"{body.get('until')!r}")
        return service, a, b, since, until

    async def show(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        if not text.isdigit():
            return _error(400, f"id: expected a comparison number, got: {text[:40]!r}")
        found = await asyncio.to_thread(self._comparer.get, int(text))
        if found is None:
            return _error(404, f"no comparison {text}")
        return web.json_response(found)

    async def page(self, request: web.Request) -> web.Response:
        text = request.match_info["id"]
        if not text.isdigit():
            return error_page(400, "Bad comparison id",
                              f"Expected a comparison number, got: {text[:40]!r}.")
        found = await asyncio.to_thread(self._comparer.get, int(text))
        if found is None:
            return error_page(404, "No such comparison",
                              f"There is no comparison {text}; it may have passed the store's "
                              "retention.")
        return html_page(200, f"{found['service']}: {found['a']} vs {found['b']}",
                         comparison_page(found))


def comparison_page(c: dict[str, Any]) -> str:
    """A comparison's page: the verdict, then one row per measure."""
    state = ("anomalous", "REGRESSED") if c["regressed"] else ("ok", "no regression")
    head = (f"<header><h1>{escape(c['service'])}: {escape(c['a'])} (A) vs {escape(c['b'])} "
            f'(B)</h1><span class="state {state[0]}">{state[1]}</span>'
            f'<p class="summary">{escape(c["verdict"])}</p></header>')
    facts = (f'<table class="facts"><tbody><tr><th>Calls from</th><td>{escape(c["since"])} to '
             f'{escape(c["until"])}</td></tr><tr><th>Decided at</th><td>false-discovery rate '
             f'{num(c["alpha"])} across the measures; at least {c["min_samples"]} samples a '
             f'side</td></tr><tr><th>Made by</th><td>{escape(c["origin"])}, '
             f'{escape(c["created"])}</td></tr></tbody></table>')
    rows = [_row(m) for m in c["measures"]]
    measures = table((("Measure", False), ("A", True), ("B", True), ("95% interval of B - A",
                                                                     True),
                      ("n A / B", True), ("p", True), ("Verdict", False)), rows)
    return (head + section("facts", "Sides and windows", facts)
            + section("measures", "Measures", measures)
            + f'<footer>driftwatch comparison {c["id"]} · <a href="/api/v1/compare/{c["id"]}">'
            "JSON</a></footer>")


def _row(m: dict[str, Any]) -> str:
    # rates as percentages, an evaluation's pass rate (`evaluation_pass_rate:<name>`) too
    share = m["unit"] == "" and m["measure"].partition(":")[0].endswith("_rate")
    value: Callable[[Any], str] = _share if share else num
    interval = m["interval"]
    span = "-" if interval is None else f"{value(interval[0])} to {value(interval[1])}"
    p = "-" if m["p_value"] is None else f"{m['p_value']:.2g}"
    mark = {True: "anomalous", False: "ok", None: "nodata"}[
        m["worse"] if m["significant"] else (None if m["significant"] is None else False)]
    return (f"<tr><td>{escape(m['label'])}</td><td class=num>{value(m['a'])}</td>"
            f"<td class=num>{value(m['b'])}</td><td class=num>{escape(span)}</td>"
            f"<td class=num>{m['n_a']:,} / {m['n_b']:,}</td><td class=num>{p}</td>"
            f'<td><span class="state {mark}">{escape(m["verdict"])}</span></td></tr>')


def _share(value: Any) -> str:
    return "-" if value is None else f"{value:.2%}"


def _time(body: dict[str, Any], key: str, default: str | None, now: int) -> int:
    value = body.get(key, default)
    if value is None:
        return now
    if not isinstance(value, str):
        raise CompareError(f"{key}: expected RFC 3339 or relative like 1h, got: {value!r}")
    try:
        found = parse_time(value, now_ns=now)
    except TimeParseError as exc:
        raise CompareError(f"{key}: {exc}") from None
    return found


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
