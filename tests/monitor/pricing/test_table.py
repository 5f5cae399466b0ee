"""The price table: which entry prices a model name, and what a call costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_config
from monitor.core.errors import ConfigError
from monitor.core.records import LLMCall
from monitor.pricing.config import PricingConfig
from monitor.pricing.table import NO_MODEL, NO_TOKENS, UNKNOWN_MODEL, PriceTable, base_name


def call(model: str | None, provider: str | None = "openai", *, input_tokens: int | None = 1000,
         output_tokens: int | None = 100, cached: int | None = None) -> LLMCall:
    return LLMCall(trace_id="1" * 32, span_id="2" * 16, parent_span_id=None,
                   service="support-bot", provider=provider, request_model=model,
                   response_model=None, operation="chat", start_ns=1, duration_s=1.0,
                   input_tokens=input_tokens, output_tokens=output_tokens,
                   cached_input_tokens=cached)


def table(**pricing: Any) -> PriceTable:
    return PriceTable(PricingConfig.model_validate(pricing))


@pytest.mark.parametrize(("name", "base"), [
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "gpt-4o-mini"),
    ("davinci-002:ft-acme-2023-01-01", "davinci"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"),
    ("models/gemini-1.5-pro-002", "gemini-1.5-pro"),
    ("gemini-2.5-pro-preview-05-06", "gemini-2.5-pro"),
    ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
    ("mistral-large-latest", "mistral-large"),
    ("mistral-large-2411", "mistral-large"),
    ("GPT-4o", "gpt-4o"),
    ("gpt-4", "gpt-4"),
    ("o1", "o1"),
])
def test_dated_versioned_and_fine_tuned_names_have_their_base(name: str, base: str) -> None:
    assert base_name(name) == base


def test_the_cost_counts_cached_input_at_its_own_price() -> None:
    gpt4o = table()  # shipped: 2.50 in, 1.25 cached, 10.00 out per million
    cost, reason = gpt4o.priced(call("gpt-4o", input_tokens=1_000_000, output_tokens=100_000,
                                     cached=400_000))
    assert reason is None
    assert cost == pytest.approx(600_000 * 2.5e-6 + 400_000 * 1.25e-6 + 100_000 * 10e-6)
    assert gpt4o.priced(call("gpt-4o", input_tokens=1_000_000, output_tokens=0))[0] == 2.5


def test_dated_and_fine_tuned_models_are_priced_as_their_base() -> None:
    prices = table()
    base = prices.priced(call("gpt-4o-mini"))[0]
    assert base is not None
    assert prices.priced(call("gpt-4o-mini-2024-07-18"))[0] == base
    assert prices.priced(call("ft:gpt-4o-mini-2024-07-18:acme::abc123"))[0] == base


def test_an_explicit_entry_wins_over_a_pattern_and_yours_over_the_shipped_one() -> None:
    prices = table(models=[
        {"pattern": "gpt-4o.*", "input_usd_per_million": 100, "output_usd_per_million": 100},
        {"model": "gpt-4o-mini", "input_usd_per_million": 1, "output_usd_per_million": 0},
    ])
    one_million = {"input_tokens": 1_000_000, "output_tokens": 0}
    assert prices.priced(call("gpt-4o-mini-2024-07-18", **one_million))[0] == 1.0  # explicit
    assert prices.priced(call("gpt-4o-audio", **one_million))[0] == 100.0  # the pattern
    # the shipped gpt-4o (2.50) is searched only after every entry of yours
    assert prices.priced(call("gpt-4o", **one_million))[0] == 100.0


def test_a_provider_entry_prices_only_that_providers_calls() -> None:
    prices = table(defaults=False, models=[
        {"provider": "azure.ai.openai", "model": "gpt-4o", "input_usd_per_million": 3,
         "output_usd_per_million": 0},
        {"model": "gpt-4o", "input_usd_per_million": 2, "output_usd_per_million": 0}])
    million = {"input_tokens": 1_000_000, "output_tokens": 0}
    assert prices.priced(call("gpt-4o", "azure.ai.openai", **million))[0] == 3.0
    assert prices.priced(call("gpt-4o", "openai", **million))[0] == 2.0


def test_calls_without_a_price_say_why() -> None:
    prices = table()
    assert prices.priced(call(None)) == (None, NO_MODEL)
    assert prices.priced(call("acme-llm-7b")) == (None, UNKNOWN_MODEL)
    assert prices.priced(call("gpt-4o", output_tokens=None)) == (None, NO_TOKENS)
    assert table(defaults=False).priced(call("gpt-4o")) == (None, UNKNOWN_MODEL)


@pytest.mark.parametrize(("entry", "message"), [
    ({"model": "gpt-4o", "input_usd_per_million": -1, "output_usd_per_million": 1},
     r"pricing\.models\.0\.input_usd_per_million: .*greater than or equal to 0, got: -1"),
    ({"model": "gpt-4o", "input_usd_per_million": 1, "output_usd_per_million": float("nan")},
     r"pricing\.models\.0\.output_usd_per_million: .*finite.*got: nan"),
    ({"pattern": "gpt-(4o", "input_usd_per_million": 1, "output_usd_per_million": 1},
     r"pricing\.models\.0\.pattern: not a regular expression .*got: 'gpt-\(4o'"),
    ({"model": "gpt-4o", "pattern": "gpt.*", "input_usd_per_million": 1,
      "output_usd_per_million": 1}, r"pricing\.models\.0: give either model or pattern"),
    ({"model": "gpt-4o", "input_per_million": 1, "output_usd_per_million": 1},
     r"pricing\.models\.0\.input_per_million: unknown key"),
    ({"model": " ", "input_usd_per_million": 1, "output_usd_per_million": 1},
     r"pricing\.models\.0\.model: must not be empty, got: ' '"),
])
def test_a_bad_entry_is_an_error_naming_the_field_and_value(
        tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = tmp_path / "driftwatch.yaml"
    path.write_text(yaml.safe_dump({"pricing": {"models": [entry]}}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_same_model_twice_is_an_error_naming_both() -> None:
    entry = {"model": "gpt-4o", "input_usd_per_million": 1, "output_usd_per_million": 1}
    with pytest.raises(ConfigError, match=r"models\.1: 'gpt-4o' .* already priced by models\.0"):
        load_config(None, {"DRIFTWATCH_PRICING__MODELS": f"[{entry}, {entry}]"})

