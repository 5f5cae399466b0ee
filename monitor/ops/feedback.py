"""`POST /api/v1/feedback`: evaluations from apps that have no OpenTelemetry, such as a
user's thumbs up or down.

The body names the call by `trace_id` and `span_id` (hex, as `driftwatch calls` prints
them) or by `response_id` (the provider's, `gen_ai.response.id`), and carries `score`
and/or `label`, an optional `name` (default `user_feedback`) and an optional `explanation`
(or `comment`, at most 2,048 characters). Every field is checked, and a bad one gets 400
naming it; unknown fields are refused too, so a misspelt one is not silently dropped. The
evaluation is committed before the answer, which is always 202: the call may not have
arrived yet (its span is still in the app's export batch), and the evaluation then waits
for it as any late one does, up to `ingest.join_window`; `call_found` says which. A full
ingest queue gets 503 with Retry-After, and so does an evaluation whose call is not stored
while `ingest.max_pending_evaluations` already wait for theirs (the writer refuses it).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from monitor.core.components import CallSink, Store, WriteBatch
from monitor.core.errors import Overloaded
from monitor.core.evaluations import (
    MAX_EXPLANATION_CHARS,
    MAX_LABEL_CHARS,
    MAX_NAME_CHARS,
    MAX_RESPONSE_ID_CHARS,
    BadEvaluation,
    Evaluation,
    checked,
)
from monitor.core.metrics import SelfMetrics

DEFAULT_NAME = "user_feedback"
FIELDS = frozenset({"trace_id", "span_id", "response_id", "name", "score", "label",
                    "explanation", "comment"})
_HEX_DIGITS = {"trace_id": 32, "span_id": 16}


def feedback_from(body: Any, *, now_ns: int) -> Evaluation:
    """The evaluation a feedback body describes.

    :raises ValueError: naming the first bad field and what it holds.
    """
    if not isinstance(body, dict):
        raise ValueError("body: expected a JSON object with trace_id and span_id or "
                         f"response_id, and score or label, got: {type(body).__name__}")
    if unknown := sorted(set(body) - FIELDS):
        raise ValueError(f"{unknown[0]}: unknown field; expected some of "
                         f"{', '.join(sorted(FIELDS))}")
    ids = {key: _hex_id(body, key) for key in ("trace_id", "span_id")}
    if (ids["trace_id"] is None) != (ids["span_id"] is None):
        missing = "span_id" if ids["span_id"] is None else "trace_id"
        raise ValueError(f"{missing}: required with the other span id, got: none")
    response_id = _text(body, "response_id", MAX_RESPONSE_ID_CHARS)
    if ids["trace_id"] is None and response_id is None:
        raise ValueError("trace_id: name the call by trace_id and span_id, or by "
                         "response_id, got: neither")
    name = _text(body, "name", MAX_NAME_CHARS) or DEFAULT_NAME
    score = body.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)
                              or not math.isfinite(score)):
        raise ValueError(f"score: expected a finite number, got: {score!r}"[:200])
    label = _text(body, "label", MAX_LABEL_CHARS)
    if score is None and label is None:
        raise ValueError("score: give a score, a label or both, got: neither")
    if "explanation" in body and "comment" in body:
        raise ValueError("comment: give explanation or comment, not both")
    key = "comment" if "comment" in body else "explanation"
    explanation = _text(body, key, MAX_EXPLANATION_CHARS)
    try:
        return checked(name=name, time_ns=now_ns, source="feedback", score=score,
                       label=label, explanation=explanation, response_id=response_id, **ids)
    except BadEvaluation as exc:  # a name or label that is not printable
        field = "label" if "label" in str(exc).split(":", 1)[0] else "name"
        raise ValueError(f"{field}: {str(exc).split(': ', 1)[1]}") from None


def _hex_id(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    size = _HEX_DIGITS[key]
    if not isinstance(value, str) or not re.fullmatch(f"[0-9a-f]{{{size}}}", value.lower()) \
            or not value.strip("0"):
        raise ValueError(f"{key}: expected {size} hex digits, not all zero, "
                         f"got: {str(value)[:80]!r}")
    return value.lower()


def _text(body: dict[str, Any], key: str, limit: int | None) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got: {value!r}"[:200])
    if limit is not None and len(value) > limit:
        raise ValueError(f"{key}: at most {limit} characters, got: {len(value)}")
    return value


class FeedbackApi:
    """The handler of `POST /api/v1/feedback`."""

    def __init__(self, sink: CallSink, store: Store, metrics: SelfMetrics,
                 now_ns: Callable[[], int]) -> None:
        self._sink = sink
        self._store = store
        self._metrics = metrics
        self._now_ns = now_ns

    async def post(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return self._refused("body: expected a JSON object")
        try:
            evaluation = feedback_from(body, now_ns=self._now_ns())
        except ValueError as exc:
            return self._refused(str(exc))
        try:
            await self._sink.submit(WriteBatch(evaluations=[evaluation]))
        except Overloaded as exc:
            return web.json_response(
                {"error": str(exc)}, status=503,
                headers={"Retry-After": str(max(1, round(exc.retry_after_s)))})
        self._metrics.evaluations_received.labels("feedback").inc()
        found = await asyncio.to_thread(self._store.has_call, evaluation.trace_id,
                                        evaluation.span_id, evaluation.response_id)
        return web.json_response({"status": "accepted", "name": evaluation.name,
                                  "call_found": found}, status=202)

    def _refused(self, message: str) -> web.Response:
        self._metrics.evaluations_refused.labels("invalid").inc()
        return web.json_response({"error": message}, status=400)
