"""GenAI log records as the OTel instrumentations emit them, and the ContentEvents they give."""

from __future__ import annotations

import random

import pytest

from collectors.events import extract_event
from collectors.spans import extract_span
from monitor.core.records import ContentEvent, ContentSource, merge_content
from tests.collectors.fixtures import (
    SECOND,
    SPAN_ID,
    START,
    TRACE_ID,
    any_value,
    as_json,
    log_event,
    span,
)
from tests.collectors.test_spans import GARBAGE_STRINGS, random_value

SYSTEM = "You are a bank's support bot."
QUESTION = "How do I reset my card PIN?"
ANSWER = "Open the app, go to Card settings and choose Reset PIN."
OPENAI = {"gen_ai.system": "openai"}


def test_v128_message_events_give_one_content_event_each() -> None:
    records = [
        log_event("gen_ai.system.message", {"content": SYSTEM}, OPENAI),
        log_event("gen_ai.user.message", {"content": QUESTION}, OPENAI),
        log_event("gen_ai.assistant.message", {"content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "reset_pin", "arguments": "{}"}}]}, OPENAI),
        log_event("gen_ai.tool.message", {"content": "Link sent", "id": "call_1"}, OPENAI),
    ]

    events = [extract_event(r, seq=i) for i, r in enumerate(records)]

    assert [(e.kind, e.text) for e in events if e is not None] == [
        ("system", SYSTEM), ("user", QUESTION), ("assistant", None), ("tool", "Link sent"),
    ]
    first = events[0]
    assert first is not None
    assert (first.trace_id, first.span_id) == (TRACE_ID.hex(), SPAN_ID.hex())
    assert (first.time_ns, first.seq) == (START, 0)


def test_v128_choice_event_gives_index_finish_reason_and_text() -> None:
    record = log_event("gen_ai.choice", {
        "index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER},
    }, OPENAI, at_s=1.5)

    assert extract_event(record, seq=7) == ContentEvent(
        trace_id=TRACE_ID.hex(), span_id=SPAN_ID.hex(), kind="choice",
        time_ns=START + int(1.5 * SECOND), seq=7, text=ANSWER, index=0, finish_reason="stop",
    )


def test_v128_events_with_content_off_carry_no_text() -> None:
    choice = log_event("gen_ai.choice", {"index": 1, "finish_reason": "length", "message": {}})
    user = log_event("gen_ai.user.message", {})
    no_body = log_event("gen_ai.user.message")

    found = [extract_event(r, seq=0) for r in (choice, user, no_body)]

    assert [(e.kind, e.text) for e in found if e is not None] == [
        ("choice", None), ("user", None), ("user", None),
    ]
    assert found[0] is not None and (found[0].index, found[0].finish_reason) == (1, "length")


def test_event_named_by_attribute_and_body_as_json_string() -> None:
    record = log_event("gen_ai.user.message", as_json({"content": QUESTION}), in_attribute=True)

    event = extract_event(record, seq=0)

    assert event is not None and (event.kind, event.text) == ("user", QUESTION)


def test_multimodal_user_message_keeps_only_its_text_parts() -> None:
    record = log_event("gen_ai.user.message", {"content": [
        {"type": "text", "text": "What is on this card?"},
        {"type": "image_url", "image_url": {"url": "https://x/card.png"}},
    ]})

    event = extract_event(record, seq=0)

    assert event is not None and event.text == "What is on this card?"


def test_log_events_fill_the_texts_of_a_v128_span() -> None:
    call = extract_span(span("chat gpt-4o", {
        "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12,
    }), {"service.name": "support-bot"}).call
    records = [
        log_event("gen_ai.system.message", {"content": SYSTEM}, OPENAI),
        log_event("gen_ai.user.message", {"content": "What is my balance?"}, OPENAI),
        log_event("gen_ai.assistant.message", {"content": "Which account?"}, OPENAI),
        log_event("gen_ai.user.message", {"content": QUESTION}, OPENAI),
        log_event("gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                    "message": {"content": ANSWER}}, OPENAI, at_s=1.5),
    ]
    events = [e for i, r in enumerate(records) if (e := extract_event(r, seq=i)) is not None]

    assert call is not None and call.content_source is ContentSource.NONE
    merged = merge_content(call, events)

    assert (merged.system_prompt, merged.prompt, merged.completion) == (SYSTEM, QUESTION, ANSWER)
    assert merged.finish_reasons == ("stop",)
    assert merged.content_source is ContentSource.OTEL_LOG_EVENTS


def test_v137_operation_details_event_with_structured_attributes() -> None:
    record = log_event("gen_ai.client.inference.operation.details", None, {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.system_instructions": [{"type": "text", "content": SYSTEM}],
        "gen_ai.input.messages": [{"role": "user",
                                   "parts": [{"type": "text", "content": QUESTION}]}],
        "gen_ai.output.messages": [{"role": "assistant", "finish_reason": "stop",
                                    "parts": [{"type": "text", "content": ANSWER}]}],
    })

    event = extract_event(record, seq=0)

    assert event is not None and event.kind == "details"
    assert (event.system_prompt, event.prompt, event.completion) == (SYSTEM, QUESTION, ANSWER)
    assert (event.finish_reason, event.text) == ("stop", None)


def test_v137_operation_details_event_with_json_string_attributes() -> None:
    record = log_event("gen_ai.client.inference.operation.details", None, {
        "gen_ai.input.messages": as_json([
            {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]),
        "gen_ai.output.messages": as_json([{"role": "assistant", "finish_reason": "length",
                                            "parts": [{"type": "text", "content": ANSWER}]}]),
    })

    event = extract_event(record, seq=0)

    assert event is not None
    assert (event.system_prompt, event.prompt, event.completion) == (SYSTEM, QUESTION, ANSWER)
    assert event.finish_reason == "length"  # from the output message


def test_details_event_text_is_cut_to_max_chars() -> None:
    huge = "x" * 100_000
    record = log_event("gen_ai.client.inference.operation.details", None, {
        "gen_ai.input.messages": as_json([{"role": "user", "content": huge}]),
    })

    event = extract_event(record, seq=0, max_chars=500)

    assert event is not None and event.prompt == "x" * 500


def test_time_falls_back_to_the_observed_time() -> None:
    record = log_event("gen_ai.user.message", {"content": QUESTION})
    record.time_unix_nano = 0

    event = extract_event(record, seq=0)

    assert event is not None and event.time_ns == record.observed_time_unix_nano


@pytest.mark.parametrize("record", [
    log_event("gen_ai.user.message", {"content": QUESTION}, trace_id=b""),
    log_event("gen_ai.user.message", {"content": QUESTION}, trace_id=bytes(16)),
    log_event("gen_ai.user.message", {"content": QUESTION}, span_id=b"\x01" * 7),
    log_event("http.request", {"content": QUESTION}),
    log_event("", "GET /healthz 200"),
])
def test_records_that_are_not_genai_events_of_a_span_give_none(record: object) -> None:
    assert extract_event(record, seq=0) is None  # type: ignore[arg-type]


def test_random_bodies_and_attributes_never_raise() -> None:
    rng = random.Random(1122)
    names = ["gen_ai.user.message", "gen_ai.choice", "gen_ai.system.message",
             "gen_ai.client.inference.operation.details", "gen_ai.tool.message"]
    keys = ["gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
            "gen_ai.response.finish_reasons", "event.name"]
    for _ in range(2000):
        record = log_event(rng.choice(names), None, {k: random_value(rng) for k in
                                                     rng.sample(keys, rng.randrange(4))},
                           in_attribute=rng.random() < 0.3)
        record.body.CopyFrom(any_value(rng.choice([random_value(rng), *GARBAGE_STRINGS])))

        event = extract_event(record, seq=0)

        if event is not None:
            event.to_json()
