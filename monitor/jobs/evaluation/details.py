"""What an evaluation result holds besides the common fields: the evaluation's name, its
mean score and pass rate in the window and the reference, the tests' p-values, and the
worst-scored examples (redacted).

`to_json` writes the `details` object of `driftwatch status --json` (a public contract);
`from_json` reads it back from the history. Imports nothing heavy, so the CLI can read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.jobs.stored import items, number, optional_integer, text

DETECTOR = "evaluation"  # the job's and its results' name


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationExample:
    """One badly scored call of the window; its texts redacted and cut."""

    score: float | None = None
    label: str | None = None
    explanation: str = ""
    prompt: str = ""
    completion: str = ""
    trace_id: str = ""
    span_id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "label": self.label, "explanation": self.explanation,
                "prompt": self.prompt, "completion": self.completion,
                "trace_id": self.trace_id, "span_id": self.span_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationExample:
        label = data.get("label")
        return cls(score=number(data.get("score")),
                   label=label if isinstance(label, str) else None,
                   explanation=text(data.get("explanation")), prompt=text(data.get("prompt")),
                   completion=text(data.get("completion")),
                   trace_id=text(data.get("trace_id")), span_id=text(data.get("span_id")))


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationDetails:
    """Rates are shares of the evaluations that a label or the threshold judged; the
    reference's are None until the segment has a reference."""

    evaluation: str = ""  # the evaluation's name (gen_ai.evaluation.name)
    count: int | None = None  # evaluations in the window
    mean_score: float | None = None
    pass_rate: float | None = None
    passed: int | None = None
    judged: int | None = None  # evaluations a label or the threshold judged
    reference_count: int | None = None
    reference_mean_score: float | None = None
    reference_pass_rate: float | None = None
    pass_rate_drop: float | None = None  # reference minus current
    score_drop: float | None = None
    p_pass_rate: float | None = None  # one-sided Fisher exact, uncorrected
    p_score: float | None = None  # one-sided Mann-Whitney U, uncorrected
    names_tested: int | None = None  # evaluation names of the segment Holm corrected over
    reference: str = ""  # the reference window, described
    worst_examples: tuple[EvaluationExample, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation, "count": self.count, "mean_score": self.mean_score,
            "pass_rate": self.pass_rate, "passed": self.passed, "judged": self.judged,
            "reference_count": self.reference_count,
            "reference_mean_score": self.reference_mean_score,
            "reference_pass_rate": self.reference_pass_rate,
            "pass_rate_drop": self.pass_rate_drop, "score_drop": self.score_drop,
            "p_pass_rate": self.p_pass_rate, "p_score": self.p_score,
            "names_tested": self.names_tested, "reference": self.reference,
            "worst_examples": [e.to_json() for e in self.worst_examples]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationDetails:
        return cls(
            evaluation=text(data.get("evaluation")), count=optional_integer(data.get("count")),
            mean_score=number(data.get("mean_score")), pass_rate=number(data.get("pass_rate")),
            passed=optional_integer(data.get("passed")),
            judged=optional_integer(data.get("judged")),
            reference_count=optional_integer(data.get("reference_count")),
            reference_mean_score=number(data.get("reference_mean_score")),
            reference_pass_rate=number(data.get("reference_pass_rate")),
            pass_rate_drop=number(data.get("pass_rate_drop")),
            score_drop=number(data.get("score_drop")),
            p_pass_rate=number(data.get("p_pass_rate")), p_score=number(data.get("p_score")),
            names_tested=optional_integer(data.get("names_tested")),
            reference=text(data.get("reference")),
            worst_examples=tuple(EvaluationExample.from_json(e)
                                 for e in items(data.get("worst_examples"))
                                 if isinstance(e, dict)))
