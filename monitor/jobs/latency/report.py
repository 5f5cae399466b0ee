"""The latency report page: traffic and errors, duration and time-to-first-token quantiles
against the reference, the error-budget burn of both SLOs over every window, and the
errors by type."""

from __future__ import annotations

from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.latency.details import QUANTILES, TTFT_QUANTILES, LatencyDetails
from monitor.jobs.plugin import Report, ReportSection
from monitor.ops.markup import muted, num, pct, table


def latency_report(result: DetectorResult, details: LatencyDetails) -> Report:
    d = details
    ratio = "-" if d.p95_ratio is None else f"x{d.p95_ratio:.2f}"
    if d.p95_ratio_ci is not None:
        low, high = d.p95_ratio_ci
        ratio += f" (95% CI x{num(low)} to x{num(high)})"
    return Report(
        title=f"Latency of {result.segment.title}", reference=d.reference,
        facts=(("Calls in the window", f"{num(d.count)} ({num(d.rate_per_s)} per second)"),
               ("Failed calls", f"{num(d.errors)} ({pct(d.error_rate)})"),
               ("p95 duration", f"{_seconds(d.p95_s)}, reference {_seconds(d.reference_p95_s)}"),
               ("p95 over the reference's", ratio),
               ("Mann-Whitney p-value (slower)", num(result.p_value))),
        sections=(
            ReportSection(anchor="quantiles", heading="Durations", html=_quantiles(d)),
            ReportSection(anchor="burn", heading="Error-budget burn", html=_burn(d)),
            ReportSection(anchor="errors", heading="Errors by type", html=_errors(d))))


def _quantiles(d: LatencyDetails) -> str:
    rows = [f"<tr><td>call duration p{q}</td><td class=num>{_seconds(d.quantile(q))}</td></tr>"
            for q in QUANTILES]
    rows += [f"<tr><td>time to first token p{q}</td>"
             f"<td class=num>{_seconds(d.ttft_quantile(q))}</td></tr>" for q in TTFT_QUANTILES]
    rows += [f"<tr><td>output tokens per second</td><td class=num>"
             f"{num(d.output_tokens_per_s)}</td></tr>",
             f"<tr><td>tokens per call</td><td class=num>{num(d.tokens_per_call)}</td></tr>"]
    return table((("Measure", False), ("Value", True)), rows)


def _burn(d: LatencyDetails) -> str:
    if not d.burn_rates:
        return muted("No burn rates in this result.")
    windows = list(dict.fromkeys(w for rates in d.burn_rates.values() for w in rates))
    rows = [f"<tr><td>{escape(slo)}</td>" + "".join(
        f"<td class=num>{'-' if rates.get(w) is None else f'{rates[w]:.2f}x'}</td>"
        for w in windows) + "</tr>" for slo, rates in d.burn_rates.items()]
    return table((("SLO", False), *((w, True) for w in windows)), rows) + muted(
        "1x spends the error budget exactly over the SLO period; - where the window is "
        "longer than the store keeps calls.")


def _errors(d: LatencyDetails) -> str:
    if not d.errors_by_type:
        return muted("No failed calls in the window.")
    rows = [f"<tr><td>{escape(kind)}</td><td class=num>{num(n)}</td></tr>"
            for kind, n in sorted(d.errors_by_type.items(), key=lambda kn: -kn[1])]
    return table((("Error type", False), ("Calls", True)), rows)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}s"
