"""The shipped price table: list prices of common models, in USD per million tokens.

PRICES_TAKEN says when they were taken from the providers' public price pages (standard
tier, the shortest context tier, no batch discount). Prices change: check yours, and override
any of them with an entry of your own under `pricing.models` (yours are searched first), or
leave this table out with `pricing.defaults: false`. Each model is listed under its maker,
but matches that model from any provider (Azure OpenAI, a gateway), since they sell it at
about its maker's list price; an entry of your own with `provider:` set prices one provider's
calls differently. Names are base names: dated and fine-tuned names find them (see
`monitor.pricing.table`).
"""

from __future__ import annotations

from monitor.pricing.config import ModelPrice

PRICES_TAKEN = "2025-11-01"

# maker -> (model, input, cached input or None for no cache discount, output), USD per 1M
LIST_PRICES: dict[str, tuple[tuple[str, float, float | None, float], ...]] = {
    "openai": (
        ("gpt-5", 1.25, 0.125, 10.0),
        ("gpt-5-mini", 0.25, 0.025, 2.0),
        ("gpt-5-nano", 0.05, 0.005, 0.40),
        ("gpt-4.1", 2.0, 0.50, 8.0),
        ("gpt-4.1-mini", 0.40, 0.10, 1.60),
        ("gpt-4.1-nano", 0.10, 0.025, 0.40),
        ("gpt-4o", 2.50, 1.25, 10.0),
        ("gpt-4o-mini", 0.15, 0.075, 0.60),
        ("o1", 15.0, 7.50, 60.0),
        ("o1-mini", 1.10, 0.55, 4.40),
        ("o3", 2.0, 0.50, 8.0),
        ("o3-mini", 1.10, 0.55, 4.40),
        ("o4-mini", 1.10, 0.275, 4.40),
        ("gpt-4-turbo", 10.0, None, 30.0),
        ("gpt-4", 30.0, None, 60.0),
        ("gpt-3.5-turbo", 0.50, None, 1.50),
    ),
    "anthropic": (
        ("claude-opus-4-5", 5.0, 0.50, 25.0),
        ("claude-opus-4-1", 15.0, 1.50, 75.0),
        ("claude-opus-4", 15.0, 1.50, 75.0),
        ("claude-sonnet-4-5", 3.0, 0.30, 15.0),
        ("claude-sonnet-4", 3.0, 0.30, 15.0),
        ("claude-haiku-4-5", 1.0, 0.10, 5.0),
        ("claude-3-7-sonnet", 3.0, 0.30, 15.0),
        ("claude-3-5-sonnet", 3.0, 0.30, 15.0),
        ("claude-3-5-haiku", 0.80, 0.08, 4.0),
        ("claude-3-opus", 15.0, 1.50, 75.0),
        ("claude-3-haiku", 0.25, 0.03, 1.25),
    ),
    "gcp.gemini": (
        ("gemini-2.5-pro", 1.25, 0.125, 10.0),
        ("gemini-2.5-flash", 0.30, 0.03, 2.50),
        ("gemini-2.5-flash-lite", 0.10, 0.01, 0.40),
        ("gemini-2.0-flash", 0.10, 0.025, 0.40),
        ("gemini-2.0-flash-lite", 0.075, None, 0.30),
        ("gemini-1.5-pro", 1.25, 0.3125, 5.0),
        ("gemini-1.5-flash", 0.075, 0.01875, 0.30),
    ),
    "mistral_ai": (
        ("mistral-large", 2.0, None, 6.0),
        ("mistral-medium", 0.40, None, 2.0),
        ("mistral-small", 0.10, None, 0.30),
        ("codestral", 0.30, None, 0.90),
        ("open-mistral-nemo", 0.15, None, 0.15),
        ("ministral-8b", 0.10, None, 0.10),
        ("ministral-3b", 0.04, None, 0.04),
    ),
    "cohere": (
        ("command-r-plus", 2.50, None, 10.0),
        ("command-r", 0.15, None, 0.60),
    ),
    "deepseek": (
        ("deepseek-chat", 0.27, 0.07, 1.10),
        ("deepseek-reasoner", 0.55, 0.14, 2.19),
    ),
}


def default_prices() -> tuple[ModelPrice, ...]:
    """The shipped table as config entries, for any provider."""
    return tuple(
        ModelPrice(model=model, input_usd_per_million=price_in,
                   cached_input_usd_per_million=cached, output_usd_per_million=price_out)
        for entries in LIST_PRICES.values() for model, price_in, cached, price_out in entries)
