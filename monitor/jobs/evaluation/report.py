"""The evaluation report page: the window's mean score and pass rate against the
reference's, the tests, and the worst-scored calls of the window (redacted)."""

from __future__ import annotations

from html import escape

from monitor.core.records import DetectorResult
from monitor.jobs.evaluation.details import EvaluationDetails, EvaluationExample
from monitor.jobs.plugin import Report, ReportSection
from monitor.ops.markup import muted, num, pct, table

_NOT_CAPTURED = '<span class="muted">not captured</span>'


def evaluation_report(result: DetectorResult, details: EvaluationDetails) -> Report:
    d = details
    passed = (f"{pct(d.pass_rate)} ({num(d.passed)} of {num(d.judged)} judged)"
              if d.pass_rate is not None else "-")
    return Report(
        title=f"Evaluation {d.evaluation or '?'} of {result.segment.title}",
        reference=d.reference,
        facts=(("Evaluation", d.evaluation or "-"), ("Evaluations in the window", num(d.count)),
               ("Pass rate", passed), ("Reference pass rate", pct(d.reference_pass_rate)),
               ("Pass rate drop", pct(d.pass_rate_drop)),
               ("Mean score", num(d.mean_score)),
               ("Reference mean score", num(d.reference_mean_score)),
               ("Fisher test p-value (pass rate, one-sided)", num(d.p_pass_rate)),
               ("Mann-Whitney U p-value (scores, one-sided)", num(d.p_score)),
               ("p-value, corrected over tests and names", num(result.p_value)),
               ("Evaluation names corrected over", num(d.names_tested))),
        sections=(ReportSection(anchor="examples", heading="Worst-scored calls in the window",
                                html=_examples(d.worst_examples)),))


def _examples(examples: tuple[EvaluationExample, ...]) -> str:
    if not examples:
        return muted("No evaluations in this window.")
    rows = [f"<tr><td class=num>{num(e.score)}</td><td>{escape(e.label or '-')}</td>"
            f"<td>{escape(e.prompt) or _NOT_CAPTURED}</td>"
            f"<td>{escape(e.completion) or _NOT_CAPTURED}</td>"
            f"<td>{escape(e.explanation) or '-'}</td>"
            f"<td><code>{escape(e.trace_id)}</code> <code>{escape(e.span_id)}</code></td></tr>"
            for e in examples]
    return ('<p class="warning">Texts are shown as received, with personal data and secrets '
            "redacted.</p>" + table(
                [("Score", True), ("Label", False), ("Prompt", False), ("Completion", False),
                 ("Explanation", False), ("Trace and span", False)], rows))
