"""A model's price, found by the name its spans give, and a call's cost in USD.

Names are compared in lowercase. Your entries are searched before the shipped ones, and in
each table the first of these that finds a price wins:

1. an entry for the exact name (one for the call's provider before one for any provider);
2. an entry for its base name: a fine-tune's base (`ft:gpt-4o-mini-2024-07-18:org::abc`,
   legacy `davinci-002:ft-org-2023`), with any path before the last `/` dropped
   (`models/gemini-1.5-pro`, `openai/gpt-4o`), then dated and versioned suffixes dropped
   one after another (`-2024-08-06`, `-20241022`, `@20241022`, `-0613`, `-2411`, `-002`,
   `-v2`, `-latest`, `-preview`, `-preview-05-06`);
3. the first pattern entry, in the order listed, whose regular expression matches the whole
   name (case-insensitively).

So an explicit entry always wins over a pattern, and yours over the shipped ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from monitor.core.records import LLMCall
from monitor.pricing.config import ModelPrice, PricingConfig
from monitor.pricing.defaults import default_prices

_SUFFIX = re.compile(
    r"(?:-\d{4}-\d{2}-\d{2}|[-@]\d{8}|-\d{3,4}|-v\d+|-latest|-preview(?:-\d{2}-\d{2})?)$")
# Why a call has no cost: a bounded label set (driftwatch_calls_unpriced_total{reason}).
NO_MODEL, UNKNOWN_MODEL, NO_TOKENS = "no_model", "unknown_model", "no_tokens"
REASONS = (NO_MODEL, UNKNOWN_MODEL, NO_TOKENS)


def base_name(model: str) -> str:
    """The name a dated, versioned or fine-tuned model is priced as (module docstring)."""
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    elif ":ft-" in name:
        name = name.split(":ft-", 1)[0]
    name = name.rsplit("/", 1)[-1]
    while True:
        shorter = _SUFFIX.sub("", name)
        if shorter == name or not shorter:
            return name
        name = shorter


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: float
    cached_input: float
    output: float

    def cost(self, input_tokens: int, cached_tokens: int | None, output_tokens: int) -> float:
        """USD for one call. Input tokens include the cached ones (OTel GenAI >= 1.27)."""
        cached = min(cached_tokens or 0, input_tokens)
        return ((input_tokens - cached) * self.input + cached * self.cached_input
                + output_tokens * self.output) / 1e6


class _Table:
    """One list of entries, indexed: exact names by (provider, name), patterns in order."""

    def __init__(self, entries: Iterable[ModelPrice]) -> None:
        self.names: dict[tuple[str | None, str], Price] = {}
        self.patterns: list[tuple[str | None, re.Pattern[str], Price]] = []
        for entry in entries:
            price = Price(entry.input_usd_per_million, entry.cached_input,
                          entry.output_usd_per_million)
            if entry.model is not None:
                self.names.setdefault((entry.provider, entry.model), price)
            elif entry.pattern is not None:
                self.patterns.append(
                    (entry.provider, re.compile(entry.pattern, re.IGNORECASE), price))

    def find(self, provider: str | None, name: str, base: str) -> Price | None:
        for key in (name, base):
            for who in (provider, None):
                price = self.names.get((who, key))
                if price is not None:
                    return price
        for who, pattern, price in self.patterns:
            if (who is None or who == provider) and pattern.fullmatch(name):
                return price
        return None


class PriceTable:
    """The configured prices, yours over the shipped ones. Thread-safe; lookups cached."""

    def __init__(self, config: PricingConfig) -> None:
        self.enabled = config.enabled
        tables = [_Table(config.models)]
        if config.defaults:
            tables.append(_Table(default_prices()))
        self._tables = tuple(tables)
        # wire names are many but bounded per deployment; the cache keeps the hot ones
        self.price = lru_cache(maxsize=4096)(self._find)

    def _find(self, provider: str | None, model: str) -> Price | None:
        name = model.strip().lower()
        base = base_name(name)
        who = provider.lower() if provider else None
        for table in self._tables:
            price = table.find(who, name, base)
            if price is not None:
                return price
        return None

    def priced(self, call: LLMCall) -> tuple[float | None, str | None]:
        """(cost in USD, None) or (None, why it has none: one of REASONS)."""
        model = call.model
        if not model:
            return None, NO_MODEL
        price = self.price(call.provider, model)
        if price is None:
            return None, UNKNOWN_MODEL
        if call.input_tokens is None or call.output_tokens is None:
            return None, NO_TOKENS
        return price.cost(call.input_tokens, call.cached_input_tokens, call.output_tokens), None
