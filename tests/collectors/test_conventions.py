"""The classifier gives each convention's spans its reader, and every other span GenAI's."""

from __future__ import annotations

import pytest

from collectors.conventions.classifier import FALLBACK, reader_for
from collectors.spans import extract_span
from monitor.core.records import ContentSource
from tests.collectors.fixtures import as_json, event, span
from tests.collectors.test_spans import (
    ANSWER,
    INPUT_MESSAGES,
    OUTPUT_MESSAGES,
    QUESTION,
    RESOURCE,
    call_of,
    openinference_attributes,
    openlit_attributes,
    openllmetry_legacy_attributes,
    otel_new_attributes,
)

V137_MESSAGES = {"gen_ai.input.messages": as_json(INPUT_MESSAGES),
                 "gen_ai.output.messages": as_json(OUTPUT_MESSAGES)}


@pytest.mark.parametrize(("attrs", "reader"), [
    (otel_new_attributes(**V137_MESSAGES), "otel"),
    ({"gen_ai.operation.name": "chat", "gen_ai.system": "openai"}, "otel"),  # v1.28
    ({"gen_ai.system": "openai", "gen_ai.request.model": "gpt-4"}, "otel"),  # v1.26
    (openinference_attributes(), "openinference"),
    ({"openinference.span.kind": "LLM"}, "openinference"),
    ({"llm.token_count.prompt": 12}, "openinference"),
    (openllmetry_legacy_attributes(), "openllmetry"),
    ({"llm.request.type": "chat", **V137_MESSAGES}, "openllmetry"),  # 0.55: GenAI's messages
    ({"traceloop.span.kind": "workflow"}, "openllmetry"),
    (openlit_attributes(), "openlit"),
    ({**openlit_attributes(), **openinference_attributes()}, "openlit"),  # the first marks win
    ({**openinference_attributes(), **openllmetry_legacy_attributes()}, "openinference"),
])
def test_each_conventions_spans_get_its_reader(attrs: dict[str, object], reader: str) -> None:
    assert reader_for(attrs).name == reader


@pytest.mark.parametrize("attrs", [
    {},
    {"http.request.method": "POST", "server.address": "api.openai.com"},
    {"telemetry.sdk.name": "opentelemetry", "llm.provider": "azure"},
])
def test_a_span_no_convention_marked_gets_the_genai_reader(attrs: dict[str, object]) -> None:
    assert reader_for(attrs) is FALLBACK


def test_an_unmarked_span_is_put_down_to_the_convention_whose_texts_it_carries() -> None:
    flattened = span("chat gpt-4o", {
        "gen_ai.operation.name": "chat",
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": QUESTION,
        "llm.output_messages.0.message.content": ANSWER,
    })
    plain_events = span("chat gpt-4o", {"gen_ai.operation.name": "chat"}, events=[
        event("gen_ai.content.prompt", {"gen_ai.prompt": f"user: {QUESTION}"}),
        event("gen_ai.content.completion", {"gen_ai.completion": ANSWER}),
    ])

    oi, lit = call_of(flattened), call_of(plain_events)

    assert (oi.prompt, oi.completion, oi.convention) == (QUESTION, ANSWER, "openinference")
    assert oi.content_source is ContentSource.OPENINFERENCE
    assert (lit.prompt, lit.completion, lit.convention) == (QUESTION, ANSWER, "openlit")
    assert call_of(span("chat gpt-4o", otel_new_attributes())).convention == "otel"


def test_a_marked_span_is_put_down_to_its_convention_wherever_its_texts_are() -> None:
    s = span("openai.chat", {**openllmetry_legacy_attributes(), **V137_MESSAGES})

    call = call_of(s)

    assert (call.convention, call.content_source) == ("openllmetry", ContentSource.OTEL_ATTRIBUTES)


def test_openlit_events_are_its_text_even_when_it_looks_like_json() -> None:
    text = '[{"role": "user", "content": "not a message list"}]'
    events = [event("gen_ai.content.prompt", {"gen_ai.prompt": text})]
    openlit = span("chat gpt-4o", openlit_attributes(), events=events)
    genai = span("chat gpt-4o", {"gen_ai.operation.name": "chat"}, events=events)

    assert call_of(openlit).prompt == text
    assert call_of(genai).prompt == "not a message list"


def test_every_reader_keeps_the_research_tables_order_across_conventions() -> None:
    # OpenLLMetry's total comes before OpenInference's in the table, on OpenInference's span too.
    attrs = {**openinference_attributes(), "llm.usage.total_tokens": 99}

    assert reader_for(attrs).name == "openinference"
    assert attrs["llm.token_count.total"] == 36
    assert call_of(span("ChatCompletion", attrs)).total_tokens == 99


def test_the_genai_operation_name_decides_the_kind_before_openinferences_span_kind() -> None:
    tool = span("execute_tool lookup", {"gen_ai.operation.name": "execute_tool",
                                        **openinference_attributes()})

    verdict = extract_span(tool, RESOURCE)

    assert (verdict.kind, verdict.call) == ("tool", None)
