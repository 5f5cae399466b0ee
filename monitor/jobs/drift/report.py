"""The drift report page: the run's decision and tests, a 2-D projection of both windows
(inline SVG), and the clusters whose share moved, with their redacted examples."""

from __future__ import annotations

from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.drift.details import Cluster, DriftDetails, Hysteresis, Projection, SelfCheck
from monitor.jobs.plugin import Report, ReportSection
from monitor.ops.markup import (
    CURRENT_COLOUR,
    REFERENCE_COLOUR,
    key,
    muted,
    num,
    pct,
    sampled,
    scale,
    share_bar,
    table,
)


def drift_report(result: DetectorResult, details: DriftDetails) -> Report:
    direction = result.direction.value if result.direction else "-"
    return Report(
        title=f"Drift in {direction}s of {result.segment.title}", reference=details.reference,
        facts=(("Decision this run", _decision(details.decision)),
               ("Hysteresis", _hysteresis(details.hysteresis)),
               ("False-discovery rate (alpha)", num(details.alpha)),
               ("Self-check false-alarm rate", _self_check(details.self_check)),
               ("Sampled", sampled(details.sampling_rate))),
        sections=(
            ReportSection(anchor="tests", heading="Tests", html=_tests(details)),
            ReportSection(anchor="projection", heading="Projection of both windows",
                          html=_projection(details.projection)),
            ReportSection(anchor="clusters", heading="Clusters whose share moved",
                          html=_clusters(details.clusters))))


def _tests(details: DriftDetails) -> str:
    if not details.tests:
        return muted("No test ran: too little data on one side.")
    rows = [f"<tr><td>{escape(name)}</td><td class=num>{num(t.statistic)}</td>"
            f"<td class=num>{num(t.p_value)}</td><td class=num>{num(t.effect)}</td></tr>"
            for name, t in details.tests.items()]
    effects = muted(f"Domain-classifier AUC {num(details.classifier_auc)} · centroid "
                    f"distance {num(details.centroid_distance)}")
    return table((("Test", False), ("Statistic", True), ("p-value", True), ("Effect", True)),
                 rows) + effects


def _clusters(clusters: tuple[Cluster, ...]) -> str:
    if not clusters:
        return muted("No cluster moved significantly (clusters are computed when a run finds "
                     "drift).")
    rows = []
    for c in clusters:
        before, after = c.share_reference, c.share_current
        examples = "".join(f"<li>{escape(e)}</li>" for e in c.examples)
        words = ", ".join(escape(w) for w in c.keywords)
        rows.append(
            f"<tr><td class=num>{share_bar(before, REFERENCE_COLOUR)}</td>"
            f"<td class=num>{share_bar(after, CURRENT_COLOUR)}</td>"
            f"<td class=num>{after - before:+.0%}</td><td class=num>{num(c.q_value)}"
            f"</td><td>{words}</td><td><ul class=examples>{examples}</ul>"
            f'<span class="muted">from the {escape(c.example_window)} window</span></td></tr>')
    return table((("Share before", True), ("Share after", True), ("Change", True),
                  ("q-value", True), ("Keywords", False), ("Examples (redacted)", False)), rows)


def _projection(picture: Projection | None) -> str:
    if picture is None or not picture.reference:
        return muted("No projection: it is drawn when both windows hold enough texts.")
    ref, cur = picture.reference, picture.current
    width, height, pad = 720, 440, 28
    xs, ys = [p[0] for p in ref + cur], [p[1] for p in ref + cur]
    scale_x, scale_y = scale(xs, pad, width - pad), scale(ys, height - pad, pad)
    circles = []
    for points, colour, name in ((ref, REFERENCE_COLOUR, "reference"),
                                 (cur, CURRENT_COLOUR, "current")):
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
    caption = (f"<figcaption>{key(REFERENCE_COLOUR)}reference ({len(ref)} texts)"
               f"{key(CURRENT_COLOUR)}current ({len(cur)} texts) · embeddings of both "
               "windows on their first two principal components; points in an area of one "
               "colour only are texts the other window lacks.</figcaption>")
    return f"<figure>{svg}{caption}</figure>"


def _decision(decision: bool | None) -> str:
    return {True: "drift", False: "no drift", None: "insufficient data"}[decision]


def _hysteresis(value: Hysteresis) -> str:
    if not value.m:
        return "-"
    return (f"anomalous after {value.k} drift decisions of the last {value.m}; "
            f"{value.drift_in_window} so far")


def _self_check(value: SelfCheck | None) -> str:
    if value is None:
        return "not measured yet"
    return f"{pct(value.false_alarm_rate)} of {value.splits} splits"
