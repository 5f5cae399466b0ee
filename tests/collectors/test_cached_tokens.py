"""Prompt-cache reads, as each convention writes them, become `cached_input_tokens`."""

from __future__ import annotations

import pytest

from collectors.spans import extract_span
from tests.collectors.fixtures import span

RESOURCE = {"service.name": "support-bot"}
OTEL = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 80}
OPENINFERENCE = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                 "llm.token_count.prompt": 1200, "llm.token_count.completion": 80}
OPENLLMETRY = {"llm.request.type": "chat", "gen_ai.system": "openai",
               "gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": 1200,
               "gen_ai.usage.completion_tokens": 80}


@pytest.mark.parametrize(("name", "attrs", "cached_key"), [
    ("chat gpt-4o", OTEL, "gen_ai.usage.cache_read.input_tokens"),
    ("ChatCompletion", OPENINFERENCE, "llm.token_count.prompt_details.cache_read"),
    ("openai.chat", OPENLLMETRY, "gen_ai.usage.cache_read_input_tokens"),
])
def test_each_convention_gives_its_cache_reads(
        name: str, attrs: dict[str, object], cached_key: str) -> None:
    call = extract_span(span(name, {**attrs, cached_key: 1024}), RESOURCE).call
    assert call is not None
    assert (call.input_tokens, call.cached_input_tokens, call.output_tokens) == (1200, 1024, 80)


def test_a_span_without_cache_reads_says_nothing_and_a_bad_count_is_ignored() -> None:
    plain = extract_span(span("chat gpt-4o", OTEL), RESOURCE).call
    garbled = extract_span(span("chat gpt-4o", {
        **OTEL, "gen_ai.usage.cache_read.input_tokens": "lots"}), RESOURCE).call
    assert plain is not None and garbled is not None
    assert plain.cached_input_tokens is None and garbled.cached_input_tokens is None
    assert garbled.input_tokens == 1200
