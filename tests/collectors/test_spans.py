"""Spans as each instrumentation really emits them, and the LLMCall (or verdict) they give."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collectors.spans import MalformedSpan, SpanVerdict, extract_span
from monitor.core.records import CallStatus, ContentSource, LLMCall
from tests.collectors.fixtures import (
    ERROR,
    SECOND,
    START,
    any_value,
    as_json,
    event,
    key_values,
    span,
)

RESOURCE = {"service.name": "support-bot", "telemetry.sdk.language": "python"}
SYSTEM = "You are a bank's support bot."
QUESTION = "How do I reset my card PIN?"
ANSWER = "Open the app, go to Card settings and choose Reset PIN."


def call_of(s: Span, resource: dict[str, object] | None = None, **kwargs: int) -> LLMCall:
    verdict = extract_span(s, RESOURCE if resource is None else resource, **kwargs)
    assert verdict.kind == "llm" and verdict.call is not None
    return verdict.call


def otel_new_attributes(**extra: object) -> dict[str, object]:
    """What opentelemetry-instrumentation-openai-v2 sets with gen_ai_latest_experimental."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-AQ9bcd",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 17,
        "server.address": "api.openai.com",
        "server.port": 443,
        **extra,
    }


INPUT_MESSAGES = [
    {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
    {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
]
OUTPUT_MESSAGES = [
    {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
]


# --- one test per convention and version ---------------------------------------------------


def test_otel_v137_json_string_attributes_give_every_field() -> None:
    s = span("chat gpt-4o-mini", otel_new_attributes(**{
        "gen_ai.input.messages": as_json(INPUT_MESSAGES),
        "gen_ai.output.messages": as_json(OUTPUT_MESSAGES),
    }))

    call = call_of(s)

    assert (call.trace_id, call.span_id) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174")
    assert call.parent_span_id == "eee19b7ec3c1b173"
    assert (call.service, call.provider, call.operation) == ("support-bot", "openai", "chat")
    assert (call.request_model, call.response_model) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (call.start_ns, call.duration_s) == (START, 1.5)
    assert (call.input_tokens, call.output_tokens, call.total_tokens) == (42, 17, 59)
    assert (call.status, call.error_type, call.finish_reasons) == (CallStatus.OK, None, ("stop",))
    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.OTEL_ATTRIBUTES, "otel")


def test_otel_v137_structured_attributes_and_system_instructions() -> None:
    s = span("chat claude-sonnet-4", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4",
        "gen_ai.system_instructions": [{"type": "text", "content": SYSTEM}],
        "gen_ai.input.messages": INPUT_MESSAGES[1:],
        "gen_ai.output.messages": OUTPUT_MESSAGES,
    })

    call = call_of(s)

    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert call.finish_reasons == ("stop",)  # from the output message
    assert call.content_source is ContentSource.OTEL_ATTRIBUTES


def test_otel_v128_span_carries_no_text_but_every_other_field() -> None:
    s = span("chat gpt-4o", {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 30,
    })

    call = call_of(s)

    assert (call.provider, call.model, call.total_tokens) == ("openai", "gpt-4o-2024-08-06", 42)
    assert (call.prompt, call.completion, call.system_prompt) == (None, None, None)
    assert not call.content_captured
    assert (call.content_source, call.convention) == (ContentSource.NONE, "otel")


def test_otel_v126_span_events_in_openai_message_format() -> None:
    s = span("ChatCompletion", {  # v1.26 had no operation name and no span name rule
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 20,
        "gen_ai.usage.completion_tokens": 9,
    }, events=[
        event("gen_ai.content.prompt", {"gen_ai.prompt": as_json(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}])}),
        event("gen_ai.content.completion", {"gen_ai.completion": as_json(
            [{"role": "assistant", "content": ANSWER}])}, at_s=1.4),
    ])

    call = call_of(s)

    assert (call.operation, call.input_tokens, call.output_tokens) == ("chat", 20, 9)
    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.OTEL_SPAN_EVENTS, "otel")


def openinference_attributes() -> dict[str, object]:
    """What openinference-instrumentation-openai sets on a chat completion span."""
    return {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o-2024-08-06",
        "llm.invocation_parameters": '{"model": "gpt-4o", "temperature": 0.2}',
        "llm.token_count.prompt": 25,
        "llm.token_count.completion": 11,
        "llm.token_count.total": 36,
        "input.mime_type": "application/json",
        "output.mime_type": "application/json",
    }


def test_openinference_flattened_messages_give_prompt_and_completion() -> None:
    s = span("ChatCompletion", {
        **openinference_attributes(),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": QUESTION,
        "llm.input_messages.1.message.contents.1.message_content.type": "image",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://x/y.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER,
        "input.value": as_json({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}),
    })

    call = call_of(s)

    assert (call.provider, call.response_model) == ("openai", "gpt-4o-2024-08-06")
    assert call.operation == "chat"
    assert (call.input_tokens, call.output_tokens, call.total_tokens) == (25, 11, 36)
    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.OPENINFERENCE, "openinference")


def test_openinference_raw_input_and_output_values_alone_still_give_texts() -> None:
    s = span("ChatCompletion", {
        **openinference_attributes(),
        "input.value": as_json({"model": "gpt-4o", "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        ]}),
        "output.value": as_json({"id": "chatcmpl-1", "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": ANSWER}},
        ]}),
    })

    call = call_of(s)

    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.RAW_IO, "openinference")


def test_openinference_legacy_completions_prompts_and_choices() -> None:
    s = span("Completion", {
        **openinference_attributes(),
        "llm.prompts.0.prompt.text": QUESTION,
        "llm.choices.0.completion.text": ANSWER,
    })

    call = call_of(s)

    assert (call.operation, call.prompt, call.completion) == ("text_completion", QUESTION, ANSWER)


def openllmetry_legacy_attributes() -> dict[str, object]:
    """What opentelemetry-instrumentation-openai 0.4x (OpenLLMetry) sets on openai.chat."""
    return {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-3.5-turbo",
        "gen_ai.response.model": "gpt-3.5-turbo-0125",
        "gen_ai.openai.api_base": "https://api.openai.com/v1/",
        "llm.is_streaming": False,
        "gen_ai.usage.prompt_tokens": 30,
        "gen_ai.usage.completion_tokens": 12,
        "llm.usage.total_tokens": 42,
    }


def test_openllmetry_legacy_flattened_prompts_and_completions() -> None:
    s = span("openai.chat", {
        **openllmetry_legacy_attributes(),
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "What is my balance?",
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.content": "Which account?",
        "gen_ai.prompt.3.role": "user",
        "gen_ai.prompt.3.content": as_json([{"type": "text", "text": QUESTION},
                                            {"type": "image_url", "image_url": {"url": "x"}}]),
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": ANSWER,
        "gen_ai.completion.0.finish_reason": "stop",
    })

    call = call_of(s)

    assert (call.provider, call.streaming, call.total_tokens) == ("openai", False, 42)
    assert (call.input_tokens, call.output_tokens) == (30, 12)
    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert call.finish_reasons == ("stop",)
    assert (call.content_source, call.convention) == (ContentSource.OPENLLMETRY, "openllmetry")


def test_openllmetry_legacy_completions_api_prompt_under_user_key() -> None:
    s = span("openai.completion", {
        **openllmetry_legacy_attributes(),
        "llm.request.type": "completion",
        "gen_ai.prompt.0.user": QUESTION,
        "gen_ai.completion.0.content": ANSWER,
    })

    call = call_of(s)

    assert (call.operation, call.prompt, call.completion) == ("text_completion", QUESTION, ANSWER)


def test_openllmetry_055_uses_otel_message_attributes_with_developer_role() -> None:
    s = span("openai.chat", {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4.1",
        "gen_ai.usage.input_tokens": 50,
        "gen_ai.usage.output_tokens": 20,
        "llm.usage.total_tokens": 70,
        "gen_ai.input.messages": as_json([
            {"role": "developer", "parts": [{"type": "text", "content": SYSTEM}]},
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
        ]),
        "gen_ai.output.messages": as_json([{"role": "assistant", "finish_reason": "stop", "parts": [
            {"type": "reasoning", "content": "The user wants a PIN reset."},
            {"type": "text", "content": ANSWER},
        ]}]),
    })

    call = call_of(s)

    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.OTEL_ATTRIBUTES, "openllmetry")


def openlit_attributes() -> dict[str, object]:
    """What OpenLIT (before its Feb 2026 semconv migration) sets on an OpenAI chat span."""
    return {
        "telemetry.sdk.name": "openlit",
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.request.is_stream": True,
        "gen_ai.usage.input_tokens": 14,
        "gen_ai.usage.output_tokens": 6,
        "gen_ai.client.token.usage": 20,
        "gen_ai.server.time_to_first_token": 0.25,
        "server.address": "api.openai.com",
        "service.name": "openlit-app",
        "deployment.environment": "default",
    }


OPENLIT_PROMPT = (
    f"system: {SYSTEM}\nuser: What is my balance?\nassistant: Which account?\nuser: {QUESTION}"
)


def test_openlit_legacy_role_lines_on_span_events() -> None:
    s = span("chat gpt-4o", openlit_attributes(), events=[
        event("gen_ai.content.prompt", {"gen_ai.prompt": OPENLIT_PROMPT}),
        event("gen_ai.content.completion", {"gen_ai.completion": ANSWER}, at_s=1.4),
    ])

    call = call_of(s, resource={})

    assert call.service == "openlit-app"  # no resource service.name: the span's own
    assert (call.streaming, call.ttft_s, call.total_tokens) == (True, 0.25, 20)
    assert (call.system_prompt, call.prompt, call.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (call.content_source, call.convention) == (ContentSource.OPENLIT, "openlit")


def test_openlit_legacy_strings_as_span_attributes_even_when_they_look_like_json() -> None:
    s = span("chat gpt-4o", {
        **openlit_attributes(),
        "gen_ai.prompt": "user: Reply in JSON.\nIt must have one key.",
        "gen_ai.completion": '{"answer": 42}',
    })

    call = call_of(s)

    assert call.prompt == "Reply in JSON.\nIt must have one key."
    assert call.completion == '{"answer": 42}'


# --- content off, redaction, which message is the prompt --------------------------------------


def test_content_off_span_keeps_every_other_field() -> None:
    s = span("chat gpt-4o-mini", otel_new_attributes(), duration_s=0.8)

    call = call_of(s)

    assert (call.provider, call.request_model, call.operation) == ("openai", "gpt-4o-mini", "chat")
    assert (call.duration_s, call.input_tokens, call.finish_reasons) == (0.8, 42, ("stop",))
    assert call.content_captured is False
    assert call.content_source is ContentSource.NONE


@pytest.mark.parametrize("marker", ["__REDACTED__", "FILTERED", ""])
def test_redaction_markers_count_as_not_captured(marker: str) -> None:
    s = span("ChatCompletion", {
        **openinference_attributes(),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": marker,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": marker,
        "input.value": marker,
        "output.value": marker,
    })

    call = call_of(s)

    assert (call.prompt, call.completion) == (None, None)
    assert call.content_source is ContentSource.NONE


def test_filtered_completion_keeps_the_prompt() -> None:
    s = span("openai.chat", {
        **openllmetry_legacy_attributes(),
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": QUESTION,
        "gen_ai.completion.0.content": "FILTERED",
        "gen_ai.completion.0.finish_reason": "content_filter",
    })

    call = call_of(s)

    assert (call.prompt, call.completion) == (QUESTION, None)
    assert call.finish_reasons == ("content_filter",)


def test_system_prompt_is_never_the_prompt_and_the_last_user_message_is() -> None:
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
        {"role": "user", "parts": [{"type": "text", "content": "What is my balance?"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Which account?"}]},
        {"role": "user", "parts": [{"type": "text", "content": "Savings."},
                                   {"type": "blob", "modality": "image", "content": "AAAA"},
                                   {"type": "text", "content": "The blue one."}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "name": "balance", "arguments": {}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "response": "120 EUR"}]},
    ]
    s = span("chat gpt-4o", otel_new_attributes(**{"gen_ai.input.messages": as_json(messages)}))

    call = call_of(s)

    assert call.prompt == "Savings.\nThe blue one."
    assert call.system_prompt == SYSTEM


def test_system_prompt_joins_instructions_and_system_messages_without_duplicates() -> None:
    s = span("chat gpt-4o", otel_new_attributes(**{
        "gen_ai.system_instructions": as_json([{"type": "text", "content": SYSTEM}]),
        "gen_ai.input.messages": as_json([
            {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
            {"role": "developer", "parts": [{"type": "text", "content": "Answer in English."}]},
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
        ]),
    }))

    assert call_of(s).system_prompt == f"{SYSTEM}\nAnswer in English."


def test_json_cut_short_by_the_instrumentation_is_kept_as_raw_text() -> None:
    cut_short = as_json(OUTPUT_MESSAGES)[:40]
    s = span("chat gpt-4o", otel_new_attributes(**{"gen_ai.output.messages": cut_short}))

    assert call_of(s).completion == cut_short


def test_every_text_longer_than_max_chars_is_cut() -> None:
    huge = "x" * 1_000_000
    s = span("chat gpt-4o", otel_new_attributes(**{
        "gen_ai.system_instructions": as_json([{"type": "text", "content": huge}]),
        "gen_ai.input.messages": as_json(
            [{"role": "user", "parts": [{"type": "text", "content": huge}]}]),
        "gen_ai.output.messages": huge,  # not JSON at all: kept raw, and cut
        "gen_ai.request.model": "m" * 10_000,
    }))

    call = call_of(s, max_chars=1000)

    assert [len(t or "") for t in (call.system_prompt, call.prompt, call.completion)] == [1000] * 3
    assert call.request_model is not None and len(call.request_model) <= 256


# --- what is and is not an LLM call ---------------------------------------------------------


@pytest.mark.parametrize(("name", "attrs", "kind"), [
    ("embeddings text-embedding-3-small",
     {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small"},
     "embeddings"),
    ("execute_tool get_weather",
     {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
      "gen_ai.tool.call.arguments": '{"city": "Paris"}', "gen_ai.request.model": "gpt-4o"},
     "tool"),
    ("invoke_agent triage", {"gen_ai.operation.name": "invoke_agent"}, "agent"),
    ("create_agent triage", {"gen_ai.operation.name": "create_agent"}, "agent"),
    ("invoke_workflow", {"gen_ai.operation.name": "invoke_workflow"}, "agent"),
    ("plan", {"gen_ai.operation.name": "plan"}, "agent"),
    ("retrieval kb", {"gen_ai.operation.name": "retrieval"}, "retrieval"),
    ("search_memory", {"gen_ai.operation.name": "search_memory"}, "other"),
    ("Retriever", {"openinference.span.kind": "RETRIEVER", "input.value": "pin"}, "retrieval"),
    ("Tool", {"openinference.span.kind": "TOOL", "tool.name": "lookup"}, "tool"),
    ("Agent", {"openinference.span.kind": "AGENT", "llm.model_name": "gpt-4o"}, "agent"),
    ("RunnableSequence", {"openinference.span.kind": "CHAIN"}, "agent"),
    ("CreateEmbeddingResponse", {"openinference.span.kind": "EMBEDDING"}, "embeddings"),
    ("openai.embeddings", {"llm.request.type": "embedding", "gen_ai.system": "openai"},
     "embeddings"),
    ("support.workflow", {"traceloop.span.kind": "workflow"}, "agent"),
    ("chroma.query", {"gen_ai.operation.name": "vectordb", "telemetry.sdk.name": "openlit"},
     "retrieval"),
    ("POST", {"http.request.method": "POST", "server.address": "api.openai.com",
              "url.full": "https://api.openai.com/v1/chat/completions"}, "other"),
    ("SELECT accounts", {"db.system.name": "postgresql", "db.query.text": "SELECT 1"}, "other"),
])
def test_non_llm_spans_are_classified_and_give_no_call(
    name: str, attrs: dict[str, object], kind: str
) -> None:
    assert extract_span(span(name, attrs), RESOURCE) == SpanVerdict(call=None, kind=kind)


@pytest.mark.parametrize(("name", "attrs", "operation"), [
    ("chat gpt-4o", {}, "chat"),
    ("text_completion davinci", {}, "text_completion"),
    ("generate_content gemini-2.5-flash", {}, "generate_content"),
    ("openai.chat", {}, "chat"),
    ("anthropic.chat", {}, "chat"),
    ("bedrock.completion", {}, "text_completion"),
    ("ChatCompletion", {"openinference.span.kind": "LLM"}, "chat"),
    ("ChatOpenAI.chat", {"llm.request.type": "chat"}, "chat"),
])
def test_llm_calls_are_recognised_by_attribute_or_span_name(
    name: str, attrs: dict[str, object], operation: str
) -> None:
    assert call_of(span(name, attrs)).operation == operation


# --- errors, streaming and time to first token -------------------------------------------


def test_error_span_takes_its_type_from_error_type() -> None:
    s = span("chat gpt-4o", otel_new_attributes(**{"error.type": "RateLimitError"}),
             status=ERROR, status_message="Error code: 429")

    call = call_of(s)

    assert (call.status, call.error_type) == (CallStatus.ERROR, "RateLimitError")


def test_error_span_falls_back_to_the_exception_event_then_the_status_message() -> None:
    exception = event("exception", {"exception.type": "openai.APITimeoutError",
                                    "exception.message": "Request timed out."})
    with_event = span("chat gpt-4o", otel_new_attributes(), status=ERROR,
                      status_message="timed out", events=[exception])
    message_only = span("chat gpt-4o", otel_new_attributes(), status=ERROR,
                        status_message="upstream closed the stream")
    bare = span("chat gpt-4o", otel_new_attributes(), status=ERROR)

    assert call_of(with_event).error_type == "openai.APITimeoutError"
    assert call_of(message_only).error_type == "upstream closed the stream"
    assert call_of(bare).error_type == "error"


def test_error_finish_reason_marks_the_call_failed() -> None:
    s = span("chat gpt-4o", otel_new_attributes(**{"gen_ai.response.finish_reasons": ["error"]}))

    assert (call_of(s).status, call_of(s).error_type) == (CallStatus.ERROR, "error")


def test_ok_span_is_ok_even_with_an_earlier_exception_event() -> None:
    s = span("chat gpt-4o", otel_new_attributes(),
             events=[event("exception", {"exception.type": "RetryableError"})])

    assert (call_of(s).status, call_of(s).error_type) == (CallStatus.OK, None)


def test_ttft_from_the_time_to_first_chunk_attribute() -> None:
    s = span("chat gpt-4o", otel_new_attributes(**{
        "gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": 0.42,
    }))

    assert (call_of(s).streaming, call_of(s).ttft_s) == (True, 0.42)


def chunk_events(first_at_s: float, n: int) -> list[Span.Event]:
    return [event("gen_ai.content.completion.chunk", at_s=first_at_s + i * 0.01) for i in range(n)]


def test_ttft_from_the_first_token_event() -> None:
    openinference = span("ChatCompletion", openinference_attributes(),
                         events=[event("First Token Stream Event", at_s=0.3)])
    openllmetry = span("openai.chat", {**openllmetry_legacy_attributes(), "llm.is_streaming": True},
                       events=chunk_events(0.5, 20)[::-1])  # order on the wire is not promised

    assert call_of(openinference).ttft_s == pytest.approx(0.3)
    assert call_of(openllmetry).ttft_s == pytest.approx(0.5)
    assert call_of(openllmetry).streaming is True


def test_ttft_from_events_is_ignored_when_events_were_dropped() -> None:
    s = span("openai.chat", openllmetry_legacy_attributes(), events=chunk_events(0.9, 128),
             dropped_events=72)

    assert call_of(s).ttft_s is None


def test_ttft_in_milliseconds_is_converted_to_seconds() -> None:
    s = span("ChatCompletion", {**openinference_attributes(), "time_to_first_token_ms": 250})

    assert call_of(s).ttft_s == 0.25


# --- service and provider -----------------------------------------------------------------


def test_service_falls_back_to_unknown_service() -> None:
    s = span("chat gpt-4o", otel_new_attributes())

    assert call_of(s, resource={}).service == "unknown_service"
    assert call_of(s, resource={"service.name": "unknown_service:python"}).service == (
        "unknown_service:python"
    )


@pytest.mark.parametrize(("attrs", "provider"), [
    ({"gen_ai.provider.name": "openai"}, "openai"),
    ({"gen_ai.provider.name": "x_ai"}, "x_ai"),
    ({"gen_ai.system": "xai"}, "x_ai"),
    ({"gen_ai.system": "az.ai.openai"}, "azure.ai.openai"),
    ({"gen_ai.system": "vertex_ai"}, "gcp.vertex_ai"),
    ({"gen_ai.system": "gemini"}, "gcp.gemini"),
    ({"gen_ai.system": "AWS"}, "aws.bedrock"),
    ({"gen_ai.system": "Azure"}, "azure.ai.openai"),
    ({"gen_ai.system": "Google"}, "gcp.gemini"),
    ({"gen_ai.system": "OpenRouter"}, "openrouter"),
    ({"gen_ai.system": "Anthropic"}, "anthropic"),
    ({"llm.provider": "mistralai", "llm.system": "mistralai"}, "mistral_ai"),
    ({"llm.provider": "azure", "llm.system": "openai"}, "azure.ai.openai"),
    ({"llm.system": "vertexai"}, "gcp.vertex_ai"),
    ({"gen_ai.provider.name": "openai", "gen_ai.system": "Azure"}, "openai"),
    ({"server.address": "api.openai.com"}, "openai"),
    ({"server.address": "api.anthropic.com"}, "anthropic"),
    ({"server.address": "my-resource.openai.azure.com"}, "azure.ai.openai"),
    ({"server.address": "bedrock-runtime.us-east-1.amazonaws.com"}, "aws.bedrock"),
    ({"server.address": "s3.amazonaws.com"}, None),
    ({"server.address": "localhost"}, None),
    ({}, None),
])
def test_provider_spellings_are_normalised(attrs: dict[str, object], provider: str | None) -> None:
    s = span("chat some-model", {"gen_ai.operation.name": "chat", **attrs})

    assert call_of(s).provider == provider


# --- malformed spans ---------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"span_id": bytes.fromhex("eee19b7ec3")}, "span_id: expected 8 bytes, got 5"),
    ({"span_id": bytes(8)}, "span_id: must not be all zero"),
    ({"trace_id": b""}, "trace_id: expected 16 bytes, got 0"),
    ({"trace_id": bytes(16)}, "trace_id: must not be all zero"),
    ({"parent_span_id": b"\x01\x02\x03"}, "parent_span_id: expected 0 or 8 bytes, got 3"),
    ({"start": 0}, "start_time_unix_nano: must be set, got 0"),
    ({"duration_s": -1.0}, "end_time_unix_nano: 1763794999000000000 is before start_time"),
    ({"start": 2**64 - 2 * SECOND}, "end_time_unix_nano: 18446744073209551616 is out of range"),
])
def test_malformed_spans_raise_naming_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(MalformedSpan, match=f"^{message}"):
        extract_span(span("chat gpt-4o", otel_new_attributes(), **fields), RESOURCE)  # type: ignore[arg-type]


def test_a_root_span_has_no_parent() -> None:
    assert call_of(span("chat gpt-4o", {}, parent_span_id=b"")).parent_span_id is None


# --- garbage in, never an exception out ------------------------------------------------------


def test_attributes_of_the_wrong_type_are_ignored() -> None:
    s = span("chat gpt-4o", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": 7,
        "gen_ai.request.model": ["gpt-4o"],
        "gen_ai.usage.input_tokens": "12",
        "gen_ai.usage.output_tokens": -3,
        "gen_ai.usage.total_tokens": 1e300,
        "gen_ai.request.stream": "TRUE",
        "gen_ai.response.time_to_first_chunk": float("nan"),
        "gen_ai.response.finish_reasons": "stop",
        "gen_ai.input.messages": [{"role": ["user"], "parts": "hi"}, 5, None, {"role": "user"}],
        "gen_ai.output.messages": {"parts": [{"type": {"x": 1}}, {"type": "text", "content": 3}]},
        "error.type": {"nested": ["garbage"]},
    })

    call = call_of(s)

    assert (call.provider, call.request_model, call.streaming) == (None, None, True)
    assert (call.input_tokens, call.output_tokens, call.total_tokens) == (12, None, None)
    assert (call.ttft_s, call.finish_reasons) == (None, ("stop",))
    assert (call.prompt, call.completion) == (None, None)


GARBAGE_KEYS = [
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.usage.input_tokens", "gen_ai.client.token.usage", "gen_ai.response.finish_reasons",
    "gen_ai.request.stream", "gen_ai.response.time_to_first_chunk", "time_to_first_token_ms",
    "openinference.span.kind", "llm.input_messages.0.message.role",
    "llm.input_messages.0.message.content", "llm.input_messages.x.message.content",
    "llm.input_messages.1.message.contents.0.message_content.text", "llm.prompts",
    "llm.output_messages.0.message.content", "llm.choices.0.completion.text", "llm.finish_reason",
    "gen_ai.prompt.0.role", "gen_ai.prompt.0.content", "gen_ai.prompt.².content",
    "gen_ai.completion.0.content", "gen_ai.prompt", "gen_ai.completion", "telemetry.sdk.name",
    "input.value", "output.value", "server.address", "service.name", "error.type",
]
GARBAGE_STRINGS = [
    "", "chat", "LLM", "user", "__REDACTED__", "[", "{", "[1, 2]", '{"messages": 5}',
    '[{"role": "user", "parts": [{"type": "text"}]}]', '{"choices": [null, {"message": 1}]}',
    '{"output": [{"type": "message", "content": [7]}]}', "user: hi\nnot a role\nsystem: x",
    "[" * 5000, "9" * 5000, "\u2028😀", "api.openai.com:443",
]


def random_value(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(9 if depth < 4 else 6)
    if choice == 0:
        return rng.choice(GARBAGE_STRINGS)
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 7, 2**63 - 1, -(2**63)])
    if choice == 3:
        return rng.choice([0.0, -0.5, 1e300, float("inf"), float("nan")])
    if choice == 4:
        return rng.randbytes(rng.randrange(4))
    if choice == 5:
        return None
    if choice == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["role", "parts", "content", "type", "text", "finish_reason", "message", "choices"]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_random_attribute_values_never_raise() -> None:
    rng = random.Random(20_251_122)
    for _ in range(3000):
        keys = rng.sample(GARBAGE_KEYS, rng.randrange(1, 10))
        s = span(rng.choice(["chat x", "openai.chat", "GET"]), {"gen_ai.operation.name": "chat"},
                 events=[event(rng.choice(["gen_ai.content.prompt", "exception",
                                           "First Token Stream Event"]),
                               {"gen_ai.prompt": random_value(rng)}, at_s=rng.uniform(-1, 2))],
                 status=rng.choice([0, 1, 2]))
        for key in keys:
            s.attributes.add(key=key, value=any_value(random_value(rng)))

        verdict = extract_span(s, {"service.name": random_value(rng)})

        if verdict.call is not None:
            verdict.call.to_json()  # the whole contract object builds


def test_an_unset_anyvalue_reads_as_absent() -> None:
    s = span("chat gpt-4o", {})
    s.attributes.extend(key_values({"gen_ai.operation.name": "chat"}))
    s.attributes.add(key="gen_ai.request.model")  # a KeyValue with no value at all

    assert call_of(s).request_model is None


# --- versions: service.version and the configured variant attribute -----------------------


def test_service_version_comes_from_the_resource_and_the_variant_from_the_named_attribute(
) -> None:
    s = span("chat gpt-4o-mini", otel_new_attributes(**{"prompt.template.version": 7}))
    resource = {**RESOURCE, "service.version": "2026.12.04-rc1"}

    call = call_of(s, resource, variant_key="prompt.template.version")

    assert (call.service_version, call.variant) == ("2026.12.04-rc1", "7")
    assert call.to_json()["service_version"] == "2026.12.04-rc1"
    assert call.to_json()["variant"] == "7"


def test_the_variant_falls_back_to_the_resource_and_is_read_only_when_configured() -> None:
    s = span("chat gpt-4o-mini", otel_new_attributes())
    resource = {**RESOURCE, "deployment.ring": "canary"}

    assert call_of(s, resource, variant_key="deployment.ring").variant == "canary"
    assert call_of(s, resource).variant is None
    assert call_of(s, resource).service_version is None


def test_versions_from_the_wire_are_bounded_and_blank_or_odd_values_ignored() -> None:
    s = span("chat gpt-4o-mini", otel_new_attributes(**{"v": ["a", "list"]}))

    long_version = call_of(s, {**RESOURCE, "service.version": "9" * 10_000}, variant_key="v")
    blank = call_of(s, {**RESOURCE, "service.version": "   "})

    assert long_version.service_version == "9" * 128
    assert long_version.variant is None
    assert blank.service_version is None
