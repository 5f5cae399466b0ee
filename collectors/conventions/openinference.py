"""OpenInference (Arize Phoenix): `llm.*` attributes, flattened messages and raw bodies.

Spans say what they are in `openinference.span.kind`. Texts are captured by default, as
flattened attributes (`llm.input_messages.N.message.content`, or `.contents.M.message_content.*`
for part lists; `llm.prompts` and `llm.choices` for the legacy completions API) and as the raw
request and response JSON in `input.value` / `output.value`, the last resort. Hidden content
reads "__REDACTED__". A streaming span marks its first token with an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.conventions.reader import (
    AGENT,
    EMBEDDINGS,
    LLM,
    RETRIEVAL,
    TOOL,
    Attributes,
    Marks,
    SpanEvents,
    SpanKind,
    TextSource,
    Vocabulary,
)
from collectors.messages import Texts, as_list, from_messages, indexed, parse_json
from monitor.core.records import ContentSource

SPAN_KIND = "openinference.span.kind"
KIND_ATTRIBUTES = (SPAN_KIND,)  # what span_kind reads
MARKS = Marks(frozenset({SPAN_KIND, "llm.model_name", "llm.token_count.prompt"}))
SPAN_KINDS = {
    "LLM": LLM, "EMBEDDING": EMBEDDINGS, "TOOL": TOOL, "AGENT": AGENT, "CHAIN": AGENT,
    "RETRIEVER": RETRIEVAL, "RERANKER": RETRIEVAL,
}


def span_kind(attrs: Attributes) -> SpanKind | None:
    kind = attrs.get(SPAN_KIND)
    if isinstance(kind, str) and kind.upper() in SPAN_KINDS:
        legacy = "llm.prompts.0.prompt.text" in attrs
        return SPAN_KINDS[kind.upper()], "text_completion" if legacy else "chat"
    return None


def _flattened_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    """`llm.input_messages.N.message.*`, `llm.output_messages.N.*`, `llm.prompts`, `llm.choices`."""
    inputs = [_message(m) for m in indexed(attrs, "llm.input_messages.")]
    outputs = [_message(m) for m in indexed(attrs, "llm.output_messages.")]
    prompts = attrs.get("llm.prompts")
    if isinstance(prompts, list):  # before the indexed form, a list of strings
        inputs += [{"role": "user", "content": p} for p in prompts]
    inputs += [{"role": "user", "content": p.get("prompt.text")}
               for p in indexed(attrs, "llm.prompts.")]
    outputs += [{"content": c.get("completion.text")} for c in indexed(attrs, "llm.choices.")]
    if not inputs and not outputs:
        return None
    return from_messages(inputs, outputs)


def _message(fields: dict[str, Any]) -> dict[str, Any]:
    content = fields.get("message.content")
    if content is None:
        content = [
            {"type": p.get("message_content.type", "text"), "text": p.get("message_content.text")}
            for p in indexed(fields, "message.contents.")
        ]
    return {"role": fields.get("message.role"), "content": content}


def _raw_io_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    """`input.value` / `output.value`: raw request and response bodies."""
    request, response = attrs.get("input.value"), attrs.get("output.value")
    if request is None and response is None:
        return None
    body, reply = parse_json(request), parse_json(response)
    if isinstance(body, dict):
        inputs: Any = _request_messages(body)
        instructions = body.get("instructions", body.get("system"))
    else:
        inputs, instructions = body, None
    return from_messages(inputs, _response_choices(reply), instructions)


def _request_messages(body: Mapping[str, Any]) -> list[Any]:
    for key in ("messages", "input", "prompt"):
        value = body.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [{"role": "user", "content": value}]
    return []


def _response_choices(reply: Any) -> list[Any]:
    """Choice messages of a chat, completions, Responses or Anthropic response body."""
    if not isinstance(reply, dict):
        return as_list(reply)
    choices = reply.get("choices")
    if isinstance(choices, list):
        return [_choice_message(c) for c in choices]
    output = reply.get("output")
    if isinstance(output, list):
        messages = [m for m in output if isinstance(m, dict) and m.get("type") == "message"]
        return messages or as_list(reply.get("output_text"))
    if "content" in reply:
        return [{"content": reply.get("content"), "finish_reason": reply.get("stop_reason")}]
    return []


def _choice_message(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else choice.get("text")
    return {"content": content, "finish_reason": choice.get("finish_reason")}


FLATTENED = TextSource(
    ContentSource.OPENINFERENCE, "openinference", _flattened_texts,
    prefixes=("llm.input_messages.", "llm.output_messages.", "llm.prompts", "llm.choices."),
)
RAW_IO = TextSource(ContentSource.RAW_IO, "openinference", _raw_io_texts)

VOCABULARY = Vocabulary(
    provider=("llm.provider", "llm.system"),  # the host (e.g. azure), then the product
    request_model=("llm.request.model_name",),
    response_model=("llm.response.model_name", "llm.model_name"),
    input_tokens=("llm.token_count.prompt",),
    output_tokens=("llm.token_count.completion",),
    total_tokens=("llm.token_count.total",),
    cached_input_tokens=("llm.token_count.prompt_details.cache_read",),
    ttft_milliseconds=("time_to_first_token_ms",),  # openai-agents realtime spans
    first_token_events=frozenset({"First Token Stream Event"}),
    finish_reason=("llm.finish_reason",),
    sources=(FLATTENED, RAW_IO),
)
