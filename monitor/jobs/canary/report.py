"""A canary result's report page: the two versions, the verdict, every measure, and the
link to the comparison's own page."""

from __future__ import annotations

from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.canary.details import CanaryDetails
from monitor.jobs.plugin import Report, ReportSection
from monitor.ops.markup import muted, num, table


def canary_report(result: DetectorResult, d: CanaryDetails) -> Report:
    rows = [f"<tr><td>{escape(m.measure)}</td><td class=num>{num(m.a)}</td>"
            f"<td class=num>{num(m.b)}</td><td class=num>"
            f"{'-' if m.p_value is None else f'{m.p_value:.2g}'}</td>"
            f"<td>{escape(m.verdict)}</td></tr>" for m in d.measures]
    measures = (table((("Measure", False), (f"A {d.previous_version}", True),
                       (f"B {d.version}", True), ("p", True), ("Verdict", False)), rows)
                if rows else muted("No comparison was made in this run."))
    link = (f'<p>The whole comparison: <a href="{escape(d.report)}">{escape(d.report)}</a></p>'
            if d.report else "")
    return Report(
        title=f"Canary of {result.service} {d.version}",
        reference=f"version {d.previous_version}" if d.previous_version else "",
        facts=(("New version (B)", d.version), ("Previous version (A)", d.previous_version),
               ("First call of B", d.first_seen),
               ("Regressed on", ", ".join(d.regressed) or "nothing")),
        sections=(ReportSection(anchor="measures", heading="Measures", html=measures + link),))
