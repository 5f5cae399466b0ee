"""Report pages on the ops server: one detector result, explained, as plain HTML.

GET /: an index for a person who opens the ops address in a browser: links to /metrics and
the API, and the latest results (anomalous first), each linking its report.

GET /reports/{detector}/{id}: the segment, windows and sample sizes, and what the
detector's plugin shows of its result (`DetectorPlugin.report`): for drift the tests, a 2-D
projection of both windows and the clusters whose share moved, with redacted examples; for
toxicity the rate over time and the most toxic examples; for latency the quantiles, burn
rates and errors.

Pages are self-contained: no script, no external CSS, font or image, so they work offline
and behind the strictest Content-Security-Policy, which they send. Every text that came
from a user or a model is HTML-escaped. Unknown ids get 404, non-numeric ones 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from html import escape
from typing import Any

from aiohttp import web

from monitor.core.records import DetectorResult
from monitor.jobs.plugin import DetectorPlugin, Report
from monitor.ops.markup import time
from monitor.store.history import SqliteHistory

_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1080px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:28px 0 10px}
.summary{font-size:16px;margin:8px 0 0}.muted{color:#5c6472}
.state{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:13px}
.anomalous{background:#fde2de;color:#a3220f}.ok{background:#dff3e4;color:#17602d}
.nodata{background:#e8eaee;color:#47505e}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:13px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.facts th{width:220px;background:#f3f5f8}
ul.examples{margin:0;padding-left:18px}ul.examples li{margin:2px 0}
.bar{display:inline-block;height:9px;border-radius:2px;vertical-align:middle}
figure{margin:0;background:#fff;border:1px solid #dde1e7;padding:12px}
figcaption{font-size:13px;color:#5c6472;margin-top:6px}
.key{display:inline-block;width:10px;height:10px;border-radius:50%;margin:0 4px 0 12px}
.warning{background:#fff6df;border:1px solid #f0d68a;padding:8px 12px;font-size:13px}
footer{margin-top:32px;font-size:13px;color:#5c6472}
"""


def routes(history: SqliteHistory,
           detectors: Mapping[str, DetectorPlugin[Any, Any]]) -> list[web.RouteDef]:
    """The report routes, for the ops server's router (`app.add_routes(...)`)."""
    pages = ReportPages(history, detectors)
    return [web.get("/", pages.index), web.get("/reports/{detector}/{id}", pages.page)]


def report_path(result: DetectorResult | Mapping[str, Any]) -> str | None:
    """The page that explains a stored result (every detector has one), e.g. for alerts."""
    detector, result_id = ((result.detector, result.id) if isinstance(result, DetectorResult)
                           else (result.get("detector"), result.get("id")))
    if detector and result_id is not None:
        return f"/reports/{detector}/{result_id}"
    return None


class ReportPages:
    def __init__(self, history: SqliteHistory,
                 detectors: Mapping[str, DetectorPlugin[Any, Any]]) -> None:
        self._history = history
        self._detectors = detectors

    async def index(self, request: web.Request) -> web.Response:
        latest = await asyncio.to_thread(self._history.latest)
        return _html(200, index_page(latest))

    async def page(self, request: web.Request) -> web.Response:
        detector, text = request.match_info["detector"], request.match_info["id"]
        plugin = self._detectors.get(detector)
        if plugin is None:
            return _html(404, _error_page(
                "No such report", f"There are no {detector!r} reports; detectors are: "
                f"{', '.join(sorted(self._detectors))}."))
        if not text.isdigit():
            return _html(400, _error_page(
                "Bad result id", f"Expected a result number, got: {text!r}."))
        result = await asyncio.to_thread(self._history.result, int(text))
        if result is None:
            return _html(404, _error_page(
                "No such result", f"There is no result {text}; it may have passed the "
                "store's retention. `driftwatch status` lists the latest ones."))
        if result.detector != detector:
            other = report_path(result) if result.detector in self._detectors else None
            hint = (f' Its page is <a href="{escape(other)}">{escape(other)}</a>.' if other
                    else "")
            return _html(404, _error_page(
                "Not a " + detector + " result",
                f"Result {text} is a {result.detector} result.", raw_hint=hint))
        series: list[DetectorResult] = []
        if plugin.report_series:
            recent = await asyncio.to_thread(
                self._history.recent, detector=detector, service=result.service,
                model=result.model, direction=result.direction, limit=plugin.report_series,
                evaluation=result.evaluation, split=result.split)
            series = [r for r in recent if r.computed_ns <= result.computed_ns]
        return _html(200, page(result, plugin.report(result, series)))


def page(result: DetectorResult, report: Report) -> str:
    """A result's whole page: header, the facts every result has and the detector's."""
    facts = _section("facts", "Windows and samples", _facts_table(result, report))
    body = facts + "".join(_section(s.anchor, s.heading, s.html) for s in report.sections)
    state_class, state = {True: ("anomalous", "ANOMALOUS"), False: ("ok", "ok"),
                          None: ("nodata", "insufficient data")}[result.anomalous]
    title = report.title
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)} · driftwatch</title><style>{_CSS}</style></head><body><main>"
        f'<header><h1>{escape(title)}</h1><span class="state {state_class}">{state}</span>'
        f'<p class="summary">{escape(result.summary)}</p></header>{body}'
        f'<footer>driftwatch result {result.id}, computed {time(result.computed_ns)} · '
        f'<a href="/api/v1/results/{result.id}">JSON</a></footer></main></body></html>')


INDEX_LINKS = (("/metrics", "Prometheus metrics"),
               ("/api/v1/results", "latest detector results (JSON)"),
               ("/api/v1/alerts", "alerts (JSON)"),
               ("/api/v1/calls?limit=20", "the 20 oldest stored calls of the last hour (JSON)"))
INDEX_RESULTS = 50


def index_page(latest: list[DetectorResult]) -> str:
    """The ops root: where to look, and the latest results, anomalous and newest first."""
    links = "".join(f'<li><a href="{escape(href)}">{escape(href)}</a> '
                    f'<span class="muted">{escape(what)}</span></li>' for href, what in INDEX_LINKS)
    ordered = sorted(latest, key=lambda r: (r.anomalous is not True, -r.computed_ns))
    rows = "".join(_index_row(r) for r in ordered[:INDEX_RESULTS])
    more = len(ordered) - INDEX_RESULTS
    table = (f"<table><thead><tr><th>Detector</th><th>Segment</th><th>Direction</th>"
             f"<th>State</th><th>Computed</th><th>Report</th></tr></thead><tbody>{rows}"
             "</tbody></table>" if rows else
             '<p class="muted">No detector results yet: jobs run on their schedule.</p>')
    if more > 0:
        table += f'<p class="muted">and {more:,} more in /api/v1/results</p>'
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>driftwatch</title><style>{_CSS}</style>'
            f"</head><body><main><h1>driftwatch</h1><ul>{links}</ul>"
            f"{_section('results', 'Latest results', table)}</main></body></html>")


def _index_row(r: DetectorResult) -> str:
    state_class, state = {True: ("anomalous", "ANOMALOUS"), False: ("ok", "ok"),
                          None: ("nodata", "no data")}[r.anomalous]
    segment = r.segment.title
    link = report_path(r) or ""
    return (f"<tr><td>{escape(r.detector)}</td><td>{escape(segment)}</td>"
            f"<td>{escape(r.direction.value if r.direction else '-')}</td>"
            f'<td><span class="state {state_class}">{state}</span></td>'
            f"<td>{escape(time(r.computed_ns))}</td>"
            f'<td><a href="{escape(link)}">report</a></td></tr>')


def html_page(status: int, title: str, body: str) -> web.Response:
    """A self-contained page in the reports' style (`body`: markup, outside text escaped),
    with their headers: for pages that are not one detector result (a comparison)."""
    return _html(status, '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                 '<meta name="viewport" content="width=device-width, initial-scale=1">'
                 f'<link rel="icon" href="data:,"><title>{escape(title)} · driftwatch</title>'
                 f"<style>{_CSS}</style></head><body><main>{body}</main></body></html>")


def error_page(status: int, title: str, message: str) -> web.Response:
    return _html(status, _error_page(title, message))


def section(anchor: str, heading: str, content: str) -> str:
    return _section(anchor, heading, content)


def _error_page(title: str, message: str, *, raw_hint: str = "") -> str:
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<link rel="icon" href="data:,">'
            f"<title>{escape(title)} · driftwatch</title><style>{_CSS}</style></head><body>"
            f"<main><h1>{escape(title)}</h1><p>{escape(message)}{raw_hint}</p></main>"
            "</body></html>")


def _html(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8",
                        headers=_HEADERS)


def _section(anchor: str, heading: str, content: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{content}</section>'


def _facts_table(result: DetectorResult, report: Report) -> str:
    rows = [
        ("Service", result.service),
        ("Model", result.model or "all models"),
        *((("Version", result.split),) if result.split else ()),
        ("Direction", result.direction.value if result.direction else "-"),
        ("Reference", report.reference or "-"),
        ("Current window", f"{time(result.window_start_ns)} to {time(result.window_end_ns)}"),
        ("Samples (reference / current)", f"{result.n_reference:,} / {result.n_current:,}"),
        *report.facts,
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'
