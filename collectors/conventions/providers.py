"""Provider names as the current semantic conventions spell them, whoever wrote the span.

Every convention names providers its own way (OpenLLMetry before 0.55 "Azure", OpenInference
"mistralai", OTel v1.36 "az.ai.openai"); all of them become the `gen_ai.provider.name` value
of the current conventions, and a span that names none may still give its API host.
"""

from __future__ import annotations

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
