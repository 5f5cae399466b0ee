"""Evaluations of calls: what an evaluator (an LLM judge, a rule, a user's thumbs) said
about one call's answer.

An `Evaluation` arrives on its own, apart from the call it judges: as an OpenTelemetry GenAI
`gen_ai.evaluation.result` event (a log record or a span event) or through
`POST /api/v1/feedback`. It names its call by trace and span id, or by the response id the
call's span carried (`gen_ai.response.id`), or both; the store joins it to the call
whichever arrives first. Every text in it comes from the wire and is bounded here, once,
before it is stored, shown or turned into a label.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

EVALUATION_EVENT = "gen_ai.evaluation.result"
NAME = "gen_ai.evaluation.name"
SCORE_VALUE = "gen_ai.evaluation.score.value"
SCORE_LABEL = "gen_ai.evaluation.score.label"
EXPLANATION = "gen_ai.evaluation.explanation"
RESPONSE_ID = "gen_ai.response.id"

MAX_NAME_CHARS = 64  # a name becomes a metric label and an alert label
MAX_LABEL_CHARS = 64
MAX_RESPONSE_ID_CHARS = 256
MAX_EXPLANATION_CHARS = 2048
SOURCES = ("log", "span_event", "feedback")


class BadEvaluation(ValueError):
    """An evaluation that cannot be kept; the message names the field and the value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """One evaluation of one call, bounded and checked (`checked` builds it).

    `trace_id`/`span_id` (hex) name the evaluated call's span when known; `response_id`
    names it by the provider's response id otherwise. At least one of the two is set.
    """

    name: str
    time_ns: int
    source: str  # one of SOURCES
    trace_id: str | None = None
    span_id: str | None = None
    response_id: str | None = None
    score: float | None = None
    label: str | None = None
    explanation: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evaluation:
        return cls(**data)


def checked(*, name: Any, time_ns: int, source: str, trace_id: str | None = None,
            span_id: str | None = None, response_id: Any = None, score: Any = None,
            label: Any = None, explanation: Any = None) -> Evaluation:
    """An Evaluation from values read off the wire, bounded.

    :raises BadEvaluation: no name, a name or label too long or not text, a score that is
        not a finite number, neither score nor label, or nothing that names the call.
    """
    if not isinstance(name, str) or not name.strip():
        raise BadEvaluation(f"{NAME}: required, got: {_shown(name)}")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise BadEvaluation(f"{NAME}: at most {MAX_NAME_CHARS} printable characters, "
                            f"got: {_shown(name)}")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float) \
                or not math.isfinite(score):
            raise BadEvaluation(f"{SCORE_VALUE}: a finite number, got: {_shown(score)}")
        score = float(score)
    if label is not None:
        if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS \
                or not label.isprintable():
            raise BadEvaluation(f"{SCORE_LABEL}: at most {MAX_LABEL_CHARS} printable "
                                f"characters, got: {_shown(label)}")
        label = label.strip() or None
    if response_id is not None:
        if not isinstance(response_id, str):
            raise BadEvaluation(f"{RESPONSE_ID}: a string, got: {_shown(response_id)}")
        # cut as the call's own is (collectors.attributes.as_label), so the two still match
        response_id = response_id[:MAX_RESPONSE_ID_CHARS] if response_id.strip() else None
    if score is None and label is None:
        raise BadEvaluation(f"{SCORE_VALUE}: a score or a {SCORE_LABEL} is required, "
                            "got: neither")
    if (trace_id is None or span_id is None) and response_id is None:
        raise BadEvaluation(f"{RESPONSE_ID}: required when the evaluation has no span id, "
                            "got: none")
    if explanation is not None and not isinstance(explanation, str):
        explanation = str(explanation)
    return Evaluation(
        name=name, time_ns=time_ns, source=source, trace_id=trace_id, span_id=span_id,
        response_id=response_id, score=score, label=label,
        explanation=explanation[:MAX_EXPLANATION_CHARS] if explanation else None)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredCall:
    """An evaluation as the detector reads it: joined to its call's segment and start,
    with the call's texts for examples."""

    name: str
    call_start_ns: int
    score: float | None
    label: str | None
    explanation: str | None = None
    trace_id: str = ""
    span_id: str = ""
    prompt: str | None = None
    completion: str | None = None
