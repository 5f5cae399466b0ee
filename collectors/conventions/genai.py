"""OpenTelemetry GenAI semantic conventions, v1.26 to v1.37+ and the genai repo.

Names are listed newest first, since a span may carry both spellings: v1.37 renamed
`gen_ai.system` to `gen_ai.provider.name`, v1.27 `prompt_tokens` to `input_tokens`. Texts are in
the v1.37+ message attributes (`gen_ai.input.messages`, JSON strings or structured) or, on
v1.26-1.27 spans, on the `gen_ai.content.prompt` / `.completion` span events as OpenAI-format
JSON; v1.28-1.36 put them on log records, and v1.37+ may too (`collectors.events` reads those
with `message_texts`). The other conventions build on these names; GenAI attributes are moving
to open-telemetry/semantic-conventions-genai, so expect renames here.
"""

from __future__ import annotations

from typing import Any

from collectors.conventions.reader import (
    AGENT,
    EMBEDDINGS,
    LLM,
    OTHER,
    RETRIEVAL,
    TOOL,
    Attributes,
    SpanEvents,
    SpanKind,
    TextSource,
    Vocabulary,
)
from collectors.messages import Texts, from_messages
from monitor.core.records import ContentSource

OPERATION_NAME = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
MESSAGE_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS)
FINISH_REASONS = "gen_ai.response.finish_reasons"
PROMPT_EVENT, PROMPT = "gen_ai.content.prompt", "gen_ai.prompt"  # v1.26-1.27 span events
COMPLETION_EVENT, COMPLETION = "gen_ai.content.completion", "gen_ai.completion"

# Log events (v1.28-1.36: one per message and per choice; v1.37+: one per operation).
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"

# gen_ai.operation.name -> span kind (OpenLIT adds its own values: collectors.conventions.openlit).
OPERATION_KINDS = {
    "chat": LLM, "text_completion": LLM, "generate_content": LLM,
    "embeddings": EMBEDDINGS, "execute_tool": TOOL,
    "invoke_agent": AGENT, "create_agent": AGENT, "invoke_workflow": AGENT, "plan": AGENT,
    "retrieval": RETRIEVAL, "fetch_response": OTHER,
}
# Span names are "{operation} {model}".
NAME_OPERATIONS = frozenset({
    "chat", "text_completion", "generate_content", "embeddings", "execute_tool",
    "invoke_agent", "create_agent", "invoke_workflow", "retrieval",
})


def operation_kind(attrs: Attributes, kinds: dict[str, str]) -> SpanKind | None:
    """By gen_ai.operation.name, looked up in `kinds`; the `*_memory` operations are other."""
    op = attrs.get(OPERATION_NAME)
    if isinstance(op, str):
        kind = kinds.get(op) or (OTHER if op.endswith("memory") else None)
        if kind is not None:
            return kind, op
    return None


def name_kind(head: str) -> SpanKind | None:
    """By the span name's first word."""
    return (OPERATION_KINDS[head], head) if head in NAME_OPERATIONS else None


def v126_kind(attrs: Attributes) -> SpanKind | None:
    """v1.26 had no operation name and left the span name free: a model means a call."""
    if REQUEST_MODEL in attrs and OPERATION_NAME not in attrs:
        return LLM, "chat"
    return None


def message_texts(source: Attributes) -> Texts:
    """The texts of the v1.37+ message attributes of a span, log record or log body."""
    return from_messages(
        source.get(INPUT_MESSAGES), source.get(OUTPUT_MESSAGES), source.get(SYSTEM_INSTRUCTIONS)
    )


def json_shaped(value: Any) -> Any:
    """The value when it is v1.26 JSON (even cut short), else None: OpenLIT's text is not."""
    if isinstance(value, (list, dict)) or (isinstance(value, str) and value[:1] in ("[", "{")):
        return value
    return None


def _attribute_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    if attrs.keys().isdisjoint(MESSAGE_ATTRIBUTES):
        return None
    return from_messages(  # message_texts, inline: every v1.37 span with content comes here
        attrs.get(INPUT_MESSAGES), attrs.get(OUTPUT_MESSAGES), attrs.get(SYSTEM_INSTRUCTIONS)
    )


def _span_event_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    prompt, completion = json_shaped(events.prompt), json_shaped(events.completion)
    if prompt is None and completion is None:
        return None
    return from_messages(prompt, completion)


MESSAGES = TextSource(ContentSource.OTEL_ATTRIBUTES, "otel", _attribute_texts)
SPAN_EVENTS = TextSource(
    ContentSource.OTEL_SPAN_EVENTS, "otel", _span_event_texts, on_events=True)

VOCABULARY = Vocabulary(
    provider=("gen_ai.provider.name", "gen_ai.system"),
    request_model=(REQUEST_MODEL,),
    response_model=("gen_ai.response.model",),
    input_tokens=("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    output_tokens=("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    total_tokens=("gen_ai.usage.total_tokens",),  # not in the conventions; OpenLLMetry, OpenLIT
    cached_input_tokens=("gen_ai.usage.cache_read.input_tokens",),  # v1.40
    streaming=("gen_ai.request.stream",),
    ttft_seconds=("gen_ai.response.time_to_first_chunk",),  # v1.41
    finish_reasons=(FINISH_REASONS,),
    content_events=((PROMPT_EVENT, PROMPT), (COMPLETION_EVENT, COMPLETION)),
    sources=(MESSAGES, SPAN_EVENTS),
)
