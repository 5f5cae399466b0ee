"""Report pages on the ops server: one drift or toxicity result, explained, as plain HTML.

GET /reports/drift/{id}: the segment, windows and sample sizes, the tests with their
statistics and p-values, a 2-D projection of both windows (inline SVG), and the clusters
whose share moved, with their redacted examples. GET /reports/toxicity/{id}: the rate with
its interval, the rate over time (inline SVG) and the most toxic examples (redacted).

Pages are self-contained: no script, no external CSS, font or image, so they work offline
and behind the strictest Content-Security-Policy, which they send. Every text that came
from a user or a model is HTML-escaped. Unknown ids get 404, non-numeric ones 400.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from aiohttp import web

from monitor.core.records import DetectorResult, rfc3339
from monitor.store.history import SqliteHistory

SERIES_LIMIT = 200
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_REFERENCE_COLOUR, _CURRENT_COLOUR = "#3b6ea8", "#d9622b"
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


def routes(history: SqliteHistory) -> list[web.RouteDef]:
    """The report routes, for the ops server's router (`app.add_routes(...)`)."""
    pages = ReportPages(history)
    return [web.get("/reports/drift/{id}", pages.drift),
            web.get("/reports/toxicity/{id}", pages.toxicity)]


def report_path(result: DetectorResult | dict[str, Any]) -> str | None:
    """The page that explains a result (drift and toxicity have one), e.g. for alerts."""
    detector, result_id = ((result.detector, result.id) if isinstance(result, DetectorResult)
                           else (result.get("detector"), result.get("id")))
    if detector in ("drift", "toxicity") and result_id is not None:
        return f"/reports/{detector}/{result_id}"
    return None


class ReportPages:
    def __init__(self, history: SqliteHistory) -> None:
        self._history = history

    async def drift(self, request: web.Request) -> web.Response:
        result = await self._result(request, "drift")
        if isinstance(result, web.Response):
            return result
        return _html(200, drift_page(result))

    async def toxicity(self, request: web.Request) -> web.Response:
        result = await self._result(request, "toxicity")
        if isinstance(result, web.Response):
            return result
        series = await asyncio.to_thread(
            self._history.recent, detector="toxicity", service=result.service,
            model=result.model, direction=result.direction, limit=SERIES_LIMIT)
        return _html(200, toxicity_page(result, [r for r in series
                                                 if r.computed_ns <= result.computed_ns]))

    async def _result(self, request: web.Request, detector: str) -> DetectorResult | web.Response:
        text = request.match_info["id"]
        if not text.isdigit():
            return _html(400, _error_page(
                "Bad result id", f"Expected a result number, got: {text!r}."))
        result = await asyncio.to_thread(self._history.result, int(text))
        if result is None:
            return _html(404, _error_page(
                "No such result", f"There is no result {text}; it may have passed the "
                "store's retention. `driftwatch status` lists the latest ones."))
        if result.detector != detector:
            other = report_path(result)
            hint = (f' Its page is <a href="{escape(other)}">{escape(other)}</a>.' if other
                    else "")
            return _html(404, _error_page(
                "Not a " + detector + " result",
                f"Result {text} is a {result.detector} result.", raw_hint=hint))
        return result


# -- pages ------------------------------------------------------------------------------------


def drift_page(result: DetectorResult) -> str:
    d = result.details
    direction = result.direction.value if result.direction else "-"
    title = f"Drift in {direction}s of {_segment(result)}"
    facts = _facts_table(result, [
        ("Decision this run", _decision(d.get("decision"))),
        ("Hysteresis", _hysteresis(d.get("hysteresis"))),
        ("False-discovery rate (alpha)", _num(d.get("alpha"))),
        ("Self-check false-alarm rate", _self_check(d.get("self_check"))),
    ])
    sections = [
        _section("facts", "Windows and samples", facts),
        _section("tests", "Tests", _tests_table(d)),
        _section("projection", "Projection of both windows", _projection(d.get("projection"))),
        _section("clusters", "Clusters whose share moved", _clusters_table(d.get("clusters"))),
    ]
    return _page(title, result, "".join(sections))


def toxicity_page(result: DetectorResult, series: Sequence[DetectorResult]) -> str:
    d = result.details
    direction = result.direction.value if result.direction else "-"
    title = f"Toxicity of {direction}s of {_segment(result)}"
    rate = d.get("toxic_rate")
    interval = (f"{_pct(rate)} (95% CI {_pct(d.get('ci_low'))} to {_pct(d.get('ci_high'))})"
                if rate is not None else "no texts in the window")
    facts = _facts_table(result, [
        ("Toxic rate", interval),
        ("Toxic texts", _num(d.get("toxic_count"))),
        ("Reference rate", _pct(d.get("reference_rate"))),
        ("Increase", _pct(d.get("increase"))),
        ("Fisher test p-value", _num(result.p_value)),
        ("Mean score", _num(d.get("mean_score"))),
        ("Scorer and threshold", f"{d.get('scorer', '-')} at {_num(d.get('threshold'))}"),
    ])
    sections = [
        _section("facts", "Window and samples", facts),
        _section("rate", "Toxic rate over time", _rate_chart(series, result)),
        _section("examples", "Most toxic texts in the window", _examples_table(
            d.get("top_examples"))),
    ]
    return _page(title, result, "".join(sections))


def _page(title: str, result: DetectorResult, body: str) -> str:
    state_class, state = {True: ("anomalous", "ANOMALOUS"), False: ("ok", "ok"),
                          None: ("nodata", "insufficient data")}[result.anomalous]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)} · driftwatch</title><style>{_CSS}</style></head><body><main>"
        f'<header><h1>{escape(title)}</h1><span class="state {state_class}">{state}</span>'
        f'<p class="summary">{escape(result.summary)}</p></header>{body}'
        f'<footer>driftwatch result {result.id}, computed {_time(result.computed_ns)} · '
        f'<a href="/api/v1/results/{result.id}">JSON</a></footer></main></body></html>')


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


# -- tables -----------------------------------------------------------------------------------


def _facts_table(result: DetectorResult, extra: list[tuple[str, str]]) -> str:
    reference = result.details.get("reference")
    rows = [
        ("Service", result.service),
        ("Model", result.model or "all models"),
        ("Direction", result.direction.value if result.direction else "-"),
        ("Reference", str(reference) if reference else "-"),
        ("Current window", f"{_time(result.window_start_ns)} to {_time(result.window_end_ns)}"),
        ("Samples (reference / current)", f"{result.n_reference:,} / {result.n_current:,}"),
        *extra,
    ]
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _tests_table(details: dict[str, Any]) -> str:
    tests = details.get("tests") or {}
    if not tests:
        return '<p class="muted">No test ran: too little data on one side.</p>'
    rows = "".join(
        f"<tr><td>{escape(str(name))}</td><td class=num>{_num(t.get('statistic'))}</td>"
        f"<td class=num>{_num(t.get('p_value'))}</td><td class=num>{_num(t.get('effect'))}"
        "</td></tr>" for name, t in tests.items() if isinstance(t, dict))
    effects = (f'<p class="muted">Domain-classifier AUC {_num(details.get("classifier_auc"))}'
               f' · centroid distance {_num(details.get("centroid_distance"))}</p>')
    return ("<table><thead><tr><th>Test</th><th class=num>Statistic</th>"
            "<th class=num>p-value</th><th class=num>Effect</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{effects}")


def _clusters_table(clusters: Any) -> str:
    if not clusters:
        return ('<p class="muted">No cluster moved significantly (clusters are computed when '
                "a run finds drift).</p>")
    rows = []
    for c in clusters:
        before, after = float(c.get("share_reference", 0)), float(c.get("share_current", 0))
        examples = "".join(f"<li>{escape(str(e))}</li>" for e in c.get("examples") or [])
        words = ", ".join(escape(str(w)) for w in c.get("keywords") or [])
        rows.append(
            f"<tr><td class=num>{_share_bar(before, _REFERENCE_COLOUR)}</td>"
            f"<td class=num>{_share_bar(after, _CURRENT_COLOUR)}</td>"
            f"<td class=num>{after - before:+.0%}</td><td class=num>{_num(c.get('q_value'))}"
            f"</td><td>{words}</td><td><ul class=examples>{examples}</ul>"
            f'<span class="muted">from the {escape(str(c.get("example_window", "current")))}'
            " window</span></td></tr>")
    return ("<table><thead><tr><th class=num>Share before</th><th class=num>Share after</th>"
            "<th class=num>Change</th><th class=num>q-value</th><th>Keywords</th>"
            f"<th>Examples (redacted)</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _examples_table(examples: Any) -> str:
    if not examples:
        return '<p class="muted">No texts above the threshold in this window.</p>'
    rows = "".join(f"<tr><td class=num>{_num(e.get('score'))}</td>"
                   f"<td>{escape(str(e.get('text', '')))}</td></tr>" for e in examples)
    return ('<p class="warning">These texts are shown as received, with personal data and '
            "secrets redacted; they may be offensive.</p><table><thead><tr>"
            f"<th class=num>Score</th><th>Text</th></tr></thead><tbody>{rows}</tbody></table>")


def _share_bar(share: float, colour: str) -> str:
    width = max(1, round(share * 80))
    return (f'{share:.0%} <span class="bar" style="width:{width}px;background:{colour}">'
            "</span>")


# -- charts -----------------------------------------------------------------------------------


def _projection(picture: Any) -> str:
    if not isinstance(picture, dict) or not picture.get("reference"):
        return ('<p class="muted">No projection: it is drawn when both windows hold enough '
                "texts.</p>")
    ref, cur = _points(picture.get("reference")), _points(picture.get("current"))
    width, height, pad = 720, 440, 28
    xs, ys = [p[0] for p in ref + cur], [p[1] for p in ref + cur]
    scale_x, scale_y = _scale(xs, pad, width - pad), _scale(ys, height - pad, pad)
    circles = []
    for points, colour, name in ((ref, _REFERENCE_COLOUR, "reference"),
                                 (cur, _CURRENT_COLOUR, "current")):
        circles.append(f'<g class="{name}" fill="{colour}" fill-opacity="0.55">' + "".join(
            f'<circle cx="{scale_x(x):.1f}" cy="{scale_y(y):.1f}" r="3.2"/>'
            for x, y in points) + "</g>")
    svg = (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           'aria-label="2-D projection of reference and current texts" '
           'xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" '
           f'fill="#fff"/>{"".join(circles)}'
           f'<text x="{width / 2}" y="{height - 6}" font-size="12" fill="#5c6472" '
           'text-anchor="middle">first principal component</text>'
           f'<text x="12" y="{height / 2}" font-size="12" fill="#5c6472" text-anchor="middle" '
           f'transform="rotate(-90 12 {height / 2})">second principal component</text></svg>')
    caption = (f'<figcaption><span class="key" style="background:{_REFERENCE_COLOUR}"></span>'
               f'reference ({len(ref)} texts)<span class="key" style="background:'
               f'{_CURRENT_COLOUR}"></span>current ({len(cur)} texts) · embeddings of both '
               "windows on their first two principal components; points in an area of one "
               "colour only are texts the other window lacks.</figcaption>")
    return f"<figure>{svg}{caption}</figure>"


def _rate_chart(series: Sequence[DetectorResult], current: DetectorResult) -> str:
    points = sorted((r for r in series if r.details.get("toxic_rate") is not None),
                    key=lambda r: r.window_end_ns)
    if not points:
        return '<p class="muted">No rate measured yet for this segment.</p>'
    width, height, pad = 720, 260, 40
    times = [r.window_end_ns for r in points]
    highs = [float(r.details.get("ci_high") or r.details["toxic_rate"]) for r in points]
    references = [float(r.details["reference_rate"]) for r in points
                  if r.details.get("reference_rate") is not None]
    top = max([*highs, *references, 0.05])
    to_x = _scale([float(t) for t in times], pad, width - 12)
    to_y = _scale([0.0, top], height - pad, 12)
    line = " ".join(f"{to_x(float(r.window_end_ns)):.1f},"
                    f"{to_y(float(r.details['toxic_rate'])):.1f}" for r in points)
    band_top = [f"{to_x(float(r.window_end_ns)):.1f},{to_y(h):.1f}"
                for r, h in zip(points, highs, strict=True)]
    band_bottom = [f"{to_x(float(r.window_end_ns)):.1f},"
                   f"{to_y(float(r.details.get('ci_low') or r.details['toxic_rate'])):.1f}"
                   for r in reversed(points)]
    parts = [f'<polygon points="{" ".join(band_top + band_bottom)}" fill="{_CURRENT_COLOUR}" '
             'fill-opacity="0.15"/>',
             f'<polyline points="{line}" fill="none" stroke="{_CURRENT_COLOUR}" '
             'stroke-width="2"/>']
    parts += [f'<circle cx="{to_x(float(r.window_end_ns)):.1f}" '
              f'cy="{to_y(float(r.details["toxic_rate"])):.1f}" '
              f'r="{5 if r.id == current.id else 3}" '
              f'fill="{"#a3220f" if r.anomalous else _CURRENT_COLOUR}"/>' for r in points]
    if references:
        y = to_y(references[-1])
        parts.append(f'<line x1="{pad}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{_REFERENCE_COLOUR}" stroke-dasharray="6 4"/>')
    for fraction in (0.0, 0.5, 1.0):
        y = to_y(top * fraction)
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="11" fill="#5c6472" '
                     f'text-anchor="end">{top * fraction:.0%}</text>')
    parts.append(f'<text x="{pad}" y="{height - 14}" font-size="11" fill="#5c6472">'
                 f"{escape(_time(times[0]))}</text>")
    parts.append(f'<text x="{width - 12}" y="{height - 14}" font-size="11" fill="#5c6472" '
                 f'text-anchor="end">{escape(_time(times[-1]))}</text>')
    svg = (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           'aria-label="toxic rate over time" xmlns="http://www.w3.org/2000/svg">'
           f'<rect width="100%" height="100%" fill="#fff"/>{"".join(parts)}</svg>')
    caption = (f'<figcaption><span class="key" style="background:{_CURRENT_COLOUR}"></span>'
               "toxic rate at each run's window end, with its 95% interval"
               f'<span class="key" style="background:{_REFERENCE_COLOUR}"></span>'
               "reference rate (dashed) · red points were anomalous</figcaption>")
    return f"<figure>{svg}{caption}</figure>"


def _points(raw: Any) -> list[tuple[float, float]]:
    points = []
    for p in raw or []:
        if (isinstance(p, list | tuple) and len(p) == 2
                and all(isinstance(v, int | float) and math.isfinite(v) for v in p)):
            points.append((float(p[0]), float(p[1])))
    return points


def _scale(values: Sequence[float], low: float, high: float) -> Callable[[float], float]:
    """A function mapping [min(values), max(values)] onto [low, high]."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    mid = (low + high) / 2
    if hi == lo:
        return lambda _v: mid
    return lambda v: low + (v - lo) / span * (high - low)


# -- formatting -------------------------------------------------------------------------------


def _segment(result: DetectorResult) -> str:
    return f"{result.service}/{result.model}" if result.model else f"{result.service} (all models)"


def _time(ns: int) -> str:
    return rfc3339(ns)[:19].replace("T", " ") + " UTC" if ns else "-"


def _num(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.1e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def _decision(decision: Any) -> str:
    return {True: "drift", False: "no drift", None: "insufficient data"}.get(decision, "-")


def _hysteresis(value: Any) -> str:
    if not isinstance(value, dict):
        return "-"
    return (f"anomalous after {value.get('k')} drift decisions of the last {value.get('m')}; "
            f"{value.get('drift_in_window')} so far")


def _self_check(value: Any) -> str:
    if not isinstance(value, dict):
        return "not measured yet"
    return f"{_pct(value.get('false_alarm_rate'))} of {value.get('splits')} splits"
