"""`gen_ai.evaluation.result` events in, `Evaluation`s out: what evaluators said of a call.

The OpenTelemetry GenAI semantic conventions define the event with `gen_ai.evaluation.name`
(required), `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
`gen_ai.evaluation.explanation`, and `gen_ai.response.id` for when the evaluated span is not
known; the event SHOULD be parented to the span it evaluates. It arrives two ways:

- as a log record: the record's trace and span id name the evaluated call's span;
- as a span event: on the evaluated call's own span, it names that span; on any other span
  (an evaluator's `evaluate` span, started as a child of the call it judges), it names that
  span's parent.

Either way `gen_ai.response.id` is kept too, and the store joins by it when the span is not
(or not yet) a stored call. Pure, like `collectors.events`: a record that is not an
evaluation gives None; one that is but cannot be kept raises `BadEvaluation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from collectors.attributes import MAX_INT64, attributes_dict
from monitor.core.evaluations import (
    EVALUATION_EVENT,
    EXPLANATION,
    NAME,
    RESPONSE_ID,
    SCORE_LABEL,
    SCORE_VALUE,
    BadEvaluation,
    Evaluation,
    checked,
)


def is_evaluation(record: logs_pb2.LogRecord) -> bool:
    if record.event_name:
        return record.event_name == EVALUATION_EVENT
    return any(kv.key == "event.name" and kv.value.string_value == EVALUATION_EVENT
               for kv in record.attributes)


def record_evaluation(record: logs_pb2.LogRecord) -> Evaluation:
    """The evaluation a `gen_ai.evaluation.result` log record carries (`is_evaluation`).

    :raises BadEvaluation: it has no name, a bad score or label, or names no call.
    """
    time_ns = record.time_unix_nano or record.observed_time_unix_nano
    if time_ns > MAX_INT64:
        raise BadEvaluation(f"time_unix_nano: out of range, got: {time_ns}")
    trace_id, span_id = _ids(record.trace_id, record.span_id)
    return _evaluation(attributes_dict(record.attributes), time_ns=time_ns, source="log",
                       trace_id=trace_id, span_id=span_id)


def span_evaluations(span: trace_pb2.Span, *, is_call: bool) -> tuple[list[Evaluation], int]:
    """The evaluations among a span's events, and how many of them were refused.

    `is_call`: the span is an LLM call (the events judge it); else they judge its parent.
    """
    found: list[Evaluation] = []
    refused = 0
    for event in span.events:
        if event.name != EVALUATION_EVENT:
            continue
        target = span.span_id if is_call else span.parent_span_id
        trace_id, span_id = _ids(span.trace_id, target)
        time_ns = event.time_unix_nano or span.end_time_unix_nano
        try:
            if time_ns > MAX_INT64:
                raise BadEvaluation(f"time_unix_nano: out of range, got: {time_ns}")
            found.append(_evaluation(attributes_dict(event.attributes), time_ns=time_ns,
                                     source="span_event", trace_id=trace_id, span_id=span_id))
        except BadEvaluation:
            refused += 1
    return found, refused


def _ids(trace_id: bytes, span_id: bytes) -> tuple[str | None, str | None]:
    if len(trace_id) != 16 or len(span_id) != 8 or not any(trace_id) or not any(span_id):
        return None, None
    return trace_id.hex(), span_id.hex()


def _evaluation(attrs: Mapping[str, Any], *, time_ns: int, source: str,
                trace_id: str | None, span_id: str | None) -> Evaluation:
    return checked(name=attrs.get(NAME), time_ns=time_ns, source=source, trace_id=trace_id,
                   span_id=span_id, response_id=attrs.get(RESPONSE_ID),
                   score=attrs.get(SCORE_VALUE), label=attrs.get(SCORE_LABEL),
                   explanation=attrs.get(EXPLANATION))
