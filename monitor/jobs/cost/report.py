"""The cost report page: spend and cost per call against the reference, the two tests
behind the verdict, and the daily budget's burn over each window."""

from __future__ import annotations

from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.cost.details import CostDetails
from monitor.jobs.plugin import Report, ReportSection
from monitor.ops.markup import muted, num, table


def cost_report(result: DetectorResult, details: CostDetails) -> Report:
    d = details
    return Report(
        title=f"Cost of {result.segment.title}", reference=d.reference,
        facts=(("Calls in the window", f"{num(d.count)} ({num(d.priced)} priced)"),
               ("Spend in the window", _usd(d.spend_usd)),
               ("Spend per hour", f"{_usd(d.spend_per_hour_usd)}, reference "
                                  f"{_usd(d.reference_spend_per_hour_usd)}"),
               ("Spend over the reference's", _ratio(d.spend_ratio)),
               ("p-value (Bonferroni over both tests)", num(result.p_value))),
        sections=(
            ReportSection(anchor="tests", heading="What changed", html=_tests(d)),
            ReportSection(anchor="budget", heading="Daily budget burn", html=_budget(d))))


def _tests(d: CostDetails) -> str:
    rows = [
        f"<tr><td>cost per call (Mann-Whitney U, higher)</td>"
        f"<td class=num>{_usd(d.cost_per_call_usd)}</td>"
        f"<td class=num>{_usd(d.reference_cost_per_call_usd)}</td>"
        f"<td class=num>{_ratio(d.cost_per_call_ratio)}</td>"
        f"<td class=num>{num(d.cost_per_call_p)}</td></tr>",
        f"<tr><td>priced calls per second (Poisson rates, higher)</td><td class=num>-</td>"
        f"<td class=num>-</td><td class=num>{_ratio(d.call_rate_ratio)}</td>"
        f"<td class=num>{num(d.call_rate_p)}</td></tr>"]
    return table((("Measure", False), ("Window", True), ("Reference", True),
                  ("Ratio", True), ("p-value", True)), rows) + muted(
        "Spend per hour is calls per second times cost per call; each part is tested at "
        "half the alpha, and the spend ratio must also reach cost.min_ratio.")


def _budget(d: CostDetails) -> str:
    if not d.budget_burn:
        return muted("No daily budget for this service (cost.budgets), or a model's result.")
    rows = [f"<tr><td>{escape(window)}</td><td class=num>{_ratio(burn)}</td></tr>"
            for window, burn in d.budget_burn.items()]
    return table((("Window", False), ("Burn", True)), rows) + muted(
        f"1x spends the daily budget ({_usd(d.daily_budget_usd)}) exactly in a day; "
        "LLMCostBudgetBurn pages at 14.4x over 1h and 5m, or 6x over 6h and 30m.")


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"x{value:.2f}"
