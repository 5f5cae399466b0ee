"""The toxicity report page: the rate with its interval, the rate over time (inline SVG) and
the most toxic examples (redacted)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.plugin import Report, ReportSection
from monitor.jobs.toxicity.details import ToxicExample, ToxicityDetails
from monitor.ops.markup import (
    CURRENT_COLOUR,
    REFERENCE_COLOUR,
    key,
    muted,
    num,
    pct,
    sampled,
    scale,
    time,
)


def toxicity_report(result: DetectorResult, details: ToxicityDetails,
                    series: Sequence[tuple[DetectorResult, ToxicityDetails]]) -> Report:
    direction = result.direction.value if result.direction else "-"
    d = details
    interval = (f"{pct(d.toxic_rate)} (95% CI {pct(d.ci_low)} to {pct(d.ci_high)})"
                if d.toxic_rate is not None else "no texts in the window")
    return Report(
        title=f"Toxicity of {direction}s of {result.segment.title}", reference=d.reference,
        facts=(("Toxic rate", interval), ("Toxic texts", num(d.toxic_count)),
               ("Reference rate", pct(d.reference_rate)), ("Increase", pct(d.increase)),
               ("Fisher test p-value", num(result.p_value)), ("Mean score", num(d.mean_score)),
               ("Scorer and threshold", f"{d.scorer or '-'} at {num(d.threshold)}"),
               ("Sampled", sampled(d.sampling_rate))),
        sections=(
            ReportSection(anchor="rate", heading="Toxic rate over time",
                          html=_rate_chart(series, result)),
            ReportSection(anchor="examples", heading="Most toxic texts in the window",
                          html=_examples(d.top_examples))))


def _examples(examples: tuple[ToxicExample, ...]) -> str:
    if not examples:
        return muted("No texts above the threshold in this window.")
    rows = "".join(f"<tr><td class=num>{num(e.score)}</td><td>{escape(e.text)}</td></tr>"
                   for e in examples)
    return ('<p class="warning">These texts are shown as received, with personal data and '
            "secrets redacted; they may be offensive.</p><table><thead><tr>"
            f"<th class=num>Score</th><th>Text</th></tr></thead><tbody>{rows}</tbody></table>")


def _rate_chart(series: Sequence[tuple[DetectorResult, ToxicityDetails]],
                current: DetectorResult) -> str:
    points = sorted(((r, d, d.toxic_rate) for r, d in series if d.toxic_rate is not None),
                    key=lambda p: p[0].window_end_ns)
    if not points:
        return muted("No rate measured yet for this segment.")
    width, height, pad = 720, 260, 40
    times = [r.window_end_ns for r, _, _ in points]
    highs = [float(d.ci_high or rate) for _, d, rate in points]
    lows = [float(d.ci_low or rate) for _, d, rate in points]
    references = [float(d.reference_rate) for _, d, _ in points if d.reference_rate is not None]
    top = max([*highs, *references, 0.05])
    to_x = scale([float(t) for t in times], pad, width - 12)
    to_y = scale([0.0, top], height - pad, 12)
    xs = [to_x(float(t)) for t in times]
    line = " ".join(f"{x:.1f},{to_y(float(rate)):.1f}" for x, (_, _, rate) in zip(
        xs, points, strict=True))
    band_top = [f"{x:.1f},{to_y(h):.1f}" for x, h in zip(xs, highs, strict=True)]
    band_bottom = [f"{x:.1f},{to_y(low):.1f}" for x, low in reversed(list(zip(
        xs, lows, strict=True)))]
    parts = [f'<polygon points="{" ".join(band_top + band_bottom)}" fill="{CURRENT_COLOUR}" '
             'fill-opacity="0.15"/>',
             f'<polyline points="{line}" fill="none" stroke="{CURRENT_COLOUR}" '
             'stroke-width="2"/>']
    parts += [f'<circle cx="{x:.1f}" cy="{to_y(float(rate)):.1f}" '
              f'r="{5 if r.id == current.id else 3}" '
              f'fill="{"#a3220f" if r.anomalous else CURRENT_COLOUR}"/>'
              for x, (r, _, rate) in zip(xs, points, strict=True)]
    if references:
        y = to_y(references[-1])
        parts.append(f'<line x1="{pad}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="{REFERENCE_COLOUR}" stroke-dasharray="6 4"/>')
    for fraction in (0.0, 0.5, 1.0):
        y = to_y(top * fraction)
        parts.append(f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="11" fill="#5c6472" '
                     f'text-anchor="end">{top * fraction:.0%}</text>')
    parts.append(f'<text x="{pad}" y="{height - 14}" font-size="11" fill="#5c6472">'
                 f"{escape(time(times[0]))}</text>")
    parts.append(f'<text x="{width - 12}" y="{height - 14}" font-size="11" fill="#5c6472" '
                 f'text-anchor="end">{escape(time(times[-1]))}</text>')
    svg = (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" '
           'aria-label="toxic rate over time" xmlns="http://www.w3.org/2000/svg">'
           f'<rect width="100%" height="100%" fill="#fff"/>{"".join(parts)}</svg>')
    caption = (f"<figcaption>{key(CURRENT_COLOUR)}toxic rate at each run's window end, with "
               f"its 95% interval{key(REFERENCE_COLOUR)}reference rate (dashed) · red points "
               "were anomalous</figcaption>")
    return f"<figure>{svg}{caption}</figure>"
