"""The attribute names of every GenAI tracing convention, in the order the research table gives.

Each tuple lists the names one field may be found under, first match wins: OTel semantic
conventions v1.37+ and older (v1.26-1.36), OpenInference (`llm.*`), OpenLLMetry before 0.55
(`llm.*` and `gen_ai.prompt.N.*`) and OpenLIT. The tables that classify a span (LLM call,
embeddings, tool, agent, retrieval, other) and normalise provider spellings live here too, so
a renamed attribute is a one-line change in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model_name")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model_name", "llm.model_name")
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
# OpenLIT writes the metric's name as a span attribute holding the total.
TOTAL_TOKENS = (
    "gen_ai.usage.total_tokens",
    "llm.usage.total_tokens",
    "llm.token_count.total",
    "gen_ai.client.token.usage",
)
STREAMING = (
    "gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming", "gen_ai.request.is_stream",
)
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token")
TTFT_MILLISECONDS = ("time_to_first_token_ms",)
FIRST_TOKEN_EVENTS = frozenset({"First Token Stream Event", "gen_ai.content.completion.chunk"})
FINISH_REASONS = "gen_ai.response.finish_reasons"
OPENINFERENCE_FINISH_REASON = "llm.finish_reason"

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
MESSAGE_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS)
FLATTENED_PREFIXES = (  # OpenInference and OpenLLMetry before 0.55
    "llm.input_messages.", "llm.output_messages.", "llm.prompts", "llm.choices.",
    "gen_ai.prompt.", "gen_ai.completion.",
)
PROMPT_EVENT = "gen_ai.content.prompt"
COMPLETION_EVENT = "gen_ai.content.completion"
LEGACY_PROMPT = "gen_ai.prompt"  # on v1.26 span events (JSON) and OpenLIT spans (text)
LEGACY_COMPLETION = "gen_ai.completion"

# Values instrumentations put where content was hidden or filtered: not captured.
NOT_CAPTURED = frozenset({"", "__REDACTED__", "FILTERED"})

LLM, EMBEDDINGS, TOOL, AGENT, RETRIEVAL, OTHER = (
    "llm", "embeddings", "tool", "agent", "retrieval", "other",
)

# gen_ai.operation.name (OTel, and OpenLIT's own values) -> span kind.
OPERATION_KINDS = {
    "chat": LLM, "text_completion": LLM, "generate_content": LLM, "completion": LLM,
    "embeddings": EMBEDDINGS, "embedding": EMBEDDINGS,
    "execute_tool": TOOL,
    "invoke_agent": AGENT, "create_agent": AGENT, "invoke_workflow": AGENT, "plan": AGENT,
    "agent": AGENT, "workflow": AGENT, "framework": AGENT, "execute_task": AGENT,
    "retrieval": RETRIEVAL, "vectordb": RETRIEVAL,
    "fetch_response": OTHER, "image": OTHER, "audio": OTHER, "fine_tuning": OTHER,
}
OPENINFERENCE_KINDS = {
    "LLM": LLM, "EMBEDDING": EMBEDDINGS, "TOOL": TOOL, "AGENT": AGENT, "CHAIN": AGENT,
    "RETRIEVER": RETRIEVAL, "RERANKER": RETRIEVAL,
}
# OpenLLMetry before 0.55: llm.request.type -> (kind, OTel operation name).
REQUEST_TYPES = {
    "chat": (LLM, "chat"), "completion": (LLM, "text_completion"),
    "embedding": (EMBEDDINGS, "embeddings"), "rerank": (RETRIEVAL, "rerank"),
}
TRACELOOP_KINDS = {"workflow": AGENT, "task": AGENT, "agent": AGENT, "tool": TOOL}
# Span names: OTel "{operation} {model}"; OpenLLMetry "{vendor}.{operation}".
NAME_OPERATIONS = frozenset({
    "chat", "text_completion", "generate_content", "embeddings", "execute_tool",
    "invoke_agent", "create_agent", "invoke_workflow", "retrieval",
})
NAME_VENDORS = frozenset({
    "openai", "anthropic", "cohere", "groq", "mistralai", "ollama", "together", "bedrock",
    "vertexai", "gemini", "watsonx", "alephalpha", "replicate", "sagemaker", "writer",
})
VENDOR_OPERATIONS = {
    "chat": "chat", "completion": "text_completion", "completions": "text_completion",
    "generate": "text_completion", "generate_content": "generate_content",
    "embeddings": "embeddings", "embedding": "embeddings",
}

OPENINFERENCE_MARKERS = ("openinference.span.kind", "llm.model_name", "llm.token_count.prompt")
OPENLLMETRY_MARKERS = (
    "llm.request.type", "traceloop.span.kind", "llm.usage.total_tokens", "llm.is_streaming",
    "gen_ai.prompt.0.role", "gen_ai.prompt.0.user",
)

# Lowercased spellings -> the current semconv gen_ai.provider.name value.
PROVIDER_ALIASES = {
    "xai": "x_ai", "x.ai": "x_ai",
    "az.ai.openai": "azure.ai.openai", "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai", "azure.openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "vertex_ai": "gcp.vertex_ai", "vertexai": "gcp.vertex_ai",
    "gemini": "gcp.gemini", "google": "gcp.gemini", "google_ai_studio": "gcp.gemini",
    "aws": "aws.bedrock", "bedrock": "aws.bedrock",
    "mistralai": "mistral_ai", "mistral": "mistral_ai",
    "watsonx": "ibm.watsonx.ai",
}
PROVIDER_HOSTS = {
    "api.openai.com": "openai", "api.anthropic.com": "anthropic",
    "api.mistral.ai": "mistral_ai", "api.cohere.com": "cohere", "api.cohere.ai": "cohere",
    "api.groq.com": "groq", "api.x.ai": "x_ai", "api.deepseek.com": "deepseek",
    "api.perplexity.ai": "perplexity", "openrouter.ai": "openrouter",
    "generativelanguage.googleapis.com": "gcp.gemini",
}
# (host prefix, host suffix, provider) for hosts named per region or per resource.
PROVIDER_HOST_PATTERNS = (
    ("", ".openai.azure.com", "azure.ai.openai"),
    ("", ".services.ai.azure.com", "azure.ai.inference"),
    ("", ".inference.ai.azure.com", "azure.ai.inference"),
    ("", "aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("bedrock", ".amazonaws.com", "aws.bedrock"),
)


def normalise_provider(name: str) -> str:
    """The current semconv spelling of a provider name (lowercase, aliases resolved)."""
    lowered = name.strip().lower()
    return PROVIDER_ALIASES.get(lowered, lowered)


def provider_from_address(address: str) -> str | None:
    """The provider a well-known API host belongs to, e.g. api.openai.com -> "openai"."""
    host = address.strip().lower().removeprefix("https://").removeprefix("http://")
    host = host.split("/", 1)[0].split(":", 1)[0]
    if host in PROVIDER_HOSTS:
        return PROVIDER_HOSTS[host]
    for prefix, suffix, provider in PROVIDER_HOST_PATTERNS:
        if host.startswith(prefix) and host.endswith(suffix):
            return provider
    return None


def classify(attrs: Mapping[str, Any], name: str) -> tuple[str, str]:
    """(kind, operation) of a span: OTel operation, OpenInference kind, OpenLLMetry, name."""
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str):
        kind = OPERATION_KINDS.get(op) or ("other" if op.endswith("memory") else None)
        if kind is not None:
            return kind, op
    oi_kind = attrs.get("openinference.span.kind")
    if isinstance(oi_kind, str) and oi_kind.upper() in OPENINFERENCE_KINDS:
        legacy = "llm.prompts.0.prompt.text" in attrs
        return OPENINFERENCE_KINDS[oi_kind.upper()], "text_completion" if legacy else "chat"
    request_type = attrs.get("llm.request.type")
    if isinstance(request_type, str) and request_type in REQUEST_TYPES:
        return REQUEST_TYPES[request_type]
    traceloop_kind = attrs.get("traceloop.span.kind")
    if isinstance(traceloop_kind, str) and traceloop_kind in TRACELOOP_KINDS:
        return TRACELOOP_KINDS[traceloop_kind], traceloop_kind
    kind, op = _classify_name(name)
    # v1.26 had no operation name and left the span name free: a model means a call.
    if op is None and "gen_ai.request.model" in attrs and "gen_ai.operation.name" not in attrs:
        return LLM, "chat"
    return kind, op or ""


def _classify_name(name: str) -> tuple[str, str | None]:
    head = name.split(" ", 1)[0]
    if head in NAME_OPERATIONS:
        return OPERATION_KINDS[head], head
    vendor, _, operation = head.rpartition(".")
    if vendor in NAME_VENDORS and operation in VENDOR_OPERATIONS:
        op = VENDOR_OPERATIONS[operation]
        return OPERATION_KINDS[op], op
    return OTHER, None


def convention_of(attrs: Mapping[str, Any]) -> str:
    """Which instrumentation family wrote a span: openlit, openinference, openllmetry, otel."""
    if attrs.get("telemetry.sdk.name") == "openlit":
        return "openlit"
    if not attrs.keys().isdisjoint(OPENINFERENCE_MARKERS):
        return "openinference"
    if not attrs.keys().isdisjoint(OPENLLMETRY_MARKERS):
        return "openllmetry"
    return "otel"
