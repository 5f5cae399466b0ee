"""OpenLLMetry (Traceloop): OTel GenAI names, plus its own `llm.*` and flattened prompts.

Since 0.55 the openai, anthropic, bedrock, langchain, google-generativeai and litellm packages
write the v1.37 message attributes (`collectors.conventions.genai`); before that, and still
in its ollama and vertexai packages, texts are flattened: `gen_ai.prompt.N.{role,content}`
(`content` holds json.dumps of a part list when multimodal; `user` for the legacy completions
API) and `gen_ai.completion.N.*`, with "FILTERED" where the content filter fired. Spans say
what they are in `llm.request.type` or `traceloop.span.kind`, or their name ("openai.chat").
A streaming span adds one event per chunk.
"""

from __future__ import annotations

from typing import Any

from collectors.conventions.genai import OPERATION_KINDS
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
from collectors.messages import Texts, from_messages, indexed, parse_json
from monitor.core.records import ContentSource

MARKS = Marks(frozenset({
    "llm.request.type", "traceloop.span.kind", "llm.usage.total_tokens", "llm.is_streaming",
    "gen_ai.prompt.0.role", "gen_ai.prompt.0.user",
}))
KIND_ATTRIBUTES = ("llm.request.type", "traceloop.span.kind")  # what span_kind reads
# llm.request.type -> (kind, OTel operation name).
REQUEST_TYPES = {
    "chat": (LLM, "chat"), "completion": (LLM, "text_completion"),
    "embedding": (EMBEDDINGS, "embeddings"), "rerank": (RETRIEVAL, "rerank"),
}
TRACELOOP_KINDS = {"workflow": AGENT, "task": AGENT, "agent": AGENT, "tool": TOOL}
# Span names are "{vendor}.{operation}".
NAME_VENDORS = frozenset({
    "openai", "anthropic", "cohere", "groq", "mistralai", "ollama", "together", "bedrock",
    "vertexai", "gemini", "watsonx", "alephalpha", "replicate", "sagemaker", "writer",
})
VENDOR_OPERATIONS = {
    "chat": "chat", "completion": "text_completion", "completions": "text_completion",
    "generate": "text_completion", "generate_content": "generate_content",
    "embeddings": "embeddings", "embedding": "embeddings",
}


def span_kind(attrs: Attributes) -> SpanKind | None:
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type in REQUEST_TYPES:
        return REQUEST_TYPES[request_type]
    traceloop_kind = attrs.get("traceloop.span.kind")
    if isinstance(traceloop_kind, str) and traceloop_kind in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[traceloop_kind], traceloop_kind
    return None


def name_kind(head: str) -> SpanKind | None:
    """By a span name's "{vendor}.{operation}" first word."""
    vendor, _, operation = head.rpartition(".")
    if vendor in NAME_VENDORS and operation in VENDOR_OPERATIONS:
        op = VENDOR_OPERATIONS[operation]
        return OPERATION_KINDS[op], op
    return None


def _flattened_texts(attrs: Attributes, events: SpanEvents) -> Texts | None:
    inputs = [_message(m) for m in indexed(attrs, "gen_ai.prompt.")]
    outputs = [_message(m) for m in indexed(attrs, "gen_ai.completion.")]
    if not inputs and not outputs:
        return None
    return from_messages(inputs, outputs)


def _message(fields: dict[str, Any]) -> dict[str, Any]:
    if "user" in fields and "content" not in fields:  # legacy completions API
        return {"role": "user", "content": fields["user"]}
    content = fields.get("content")
    parts = parse_json(content) if isinstance(content, str) and content[:1] == "[" else None
    # Multimodal content arrives as json.dumps of the request's part list.
    if isinstance(parts, list) and all(isinstance(p, dict) and "type" in p for p in parts):
        content = parts
    return {"role": fields.get("role"), "content": content,
            "finish_reason": fields.get("finish_reason")}


FLATTENED = TextSource(ContentSource.OPENLLMETRY, "openllmetry", _flattened_texts,
                       prefixes=("gen_ai.prompt.", "gen_ai.completion."))

VOCABULARY = Vocabulary(
    total_tokens=("llm.usage.total_tokens",),  # before 0.5x; later gen_ai.usage.total_tokens
    cached_input_tokens=("gen_ai.usage.cache_read_input_tokens",),
    streaming=("gen_ai.is_streaming", "llm.is_streaming"),
    first_token_events=frozenset({"gen_ai.content.completion.chunk"}),
    sources=(FLATTENED,),
)
