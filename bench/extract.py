"""Extraction benchmark: CPU per span of `collectors.extract.extract_body`, per convention.

    PYTHONPATH=$PWD .venv/bin/python bench/extract.py               # every shape, best of 7
    PYTHONPATH=$PWD .venv/bin/python bench/extract.py --spans 2000 --repeats 11
    PYTHONPATH=/other/tree .venv/bin/python bench/extract.py        # the same spans, another tree
    PYTHONPATH=$PWD .venv/bin/python bench/extract.py --dump out.jsonl   # outputs, to diff trees
    PYTHONPATH=$PWD valgrind --tool=callgrind .venv/bin/python bench/extract.py \
        --only otel-v1.37 --spans 200 --repeats 3   # and --repeats 0: instructions, exactly

Builds one OTLP/protobuf export request per span shape (each convention and version as its
instrumentation fills it, with real 300-1,500-character texts from corpora/long_texts.jsonl,
plus content-off and non-LLM spans), then times decoding and extracting each body, in this
process, with nothing else around it. Prints microseconds of CPU per span for each shape, best
of `--repeats` (the least disturbed run on a shared machine), and their mean over the shapes.
On a machine too busy for timings to settle, count instructions instead: valgrind's total
with `--repeats 3` less its total with `--repeats 0`, over 3 x `--spans`, is the instructions
per span, the same on every run.

The tree measured is whichever `collectors` package PYTHONPATH names (this script adds none
of its own), so two trees compare side by side in one session. `--dump FILE` writes what
every span of a fixed, seeded corpus extracts to (the shapes above, then spans of random
attributes of one convention and of all of them mixed), one JSON line per span, for `cmp`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collectors.extract import extract_body
from tests.collectors.fixtures import any_value

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "long_texts.jsonl"
START = 1_763_795_000_000_000_000
SECOND = 1_000_000_000
SYSTEM = "You are a helpful assistant. Answer briefly and cite the documentation."



def key_values(attrs: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items() if v is not None]


def make_span(i: int, name: str, attrs: Mapping[str, Any],
              events: Sequence[tuple[str, Mapping[str, Any], float]] = ()) -> Span:
    start = START + i * SECOND
    return Span(
        trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
        parent_span_id=(i + 7).to_bytes(8, "big"), name=name, kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start, end_time_unix_nano=start + 2 * SECOND,
        attributes=key_values(attrs),
        events=[Span.Event(name=n, time_unix_nano=start + int(at * SECOND),
                           attributes=key_values(a)) for n, a, at in events],
        status=Status(code=Status.STATUS_CODE_UNSET),
    )


# --- one builder per convention and version: (name, attributes, span events) ---------------

Built = tuple[str, dict[str, Any], list[Any]]  # span name, attributes, events
Shape = Callable[[int, str, str], Built]
GENAI = {"gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
         "gen_ai.usage.input_tokens": 420, "gen_ai.usage.output_tokens": 170,
         "gen_ai.response.finish_reasons": ["stop"], "server.address": "api.openai.com"}


def otel_v137(i: int, prompt: str, completion: str) -> Built:
    return "chat gpt-4o", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", **GENAI,
        "gen_ai.input.messages": json.dumps([
            {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
            {"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        "gen_ai.output.messages": json.dumps([{
            "role": "assistant", "finish_reason": "stop",
            "parts": [{"type": "text", "content": completion}]}]),
    }, []


def otel_content_off(i: int, prompt: str, completion: str) -> Built:
    return "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", **GENAI}, []


def otel_v126_events(i: int, prompt: str, completion: str) -> Built:
    return "ChatCompletion", {
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 420, "gen_ai.usage.completion_tokens": 170,
    }, [("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps(
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}])}, 0.0),
        ("gen_ai.content.completion", {"gen_ai.completion": json.dumps(
            [{"role": "assistant", "content": completion}])}, 1.9)]


OPENINFERENCE = {"openinference.span.kind": "LLM", "llm.system": "openai", "llm.provider": "openai",
                 "llm.model_name": "gpt-4o-2024-08-06", "llm.token_count.prompt": 420,
                 "llm.token_count.completion": 170, "llm.token_count.total": 590}


def openinference(i: int, prompt: str, completion: str) -> Built:
    return "ChatCompletion", {
        **OPENINFERENCE,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": prompt,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": completion,
        "input.value": json.dumps({"model": "gpt-4o", "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]}),
        "input.mime_type": "application/json",
    }, [("First Token Stream Event", {}, 0.3)]


def openinference_raw(i: int, prompt: str, completion: str) -> Built:
    return "ChatCompletion", {
        **OPENINFERENCE,
        "input.value": json.dumps({"model": "gpt-4o", "messages": [
            {"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]}),
        "output.value": json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"content": completion}}]}),
    }, []


OPENLLMETRY = {"llm.request.type": "chat", "gen_ai.system": "openai",
               "gen_ai.request.model": "gpt-3.5-turbo",
               "gen_ai.response.model": "gpt-3.5-turbo-0125",
               "llm.is_streaming": False, "gen_ai.usage.prompt_tokens": 420,
               "gen_ai.usage.completion_tokens": 170, "llm.usage.total_tokens": 590}


def openllmetry(i: int, prompt: str, completion: str) -> Built:
    return "openai.chat", {
        **OPENLLMETRY,
        "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": prompt,
        "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": completion,
        "gen_ai.completion.0.finish_reason": "stop",
    }, []


def openllmetry_055(i: int, prompt: str, completion: str) -> Built:
    _, attrs, _ = otel_v137(i, prompt, completion)
    return "openai.chat", {**attrs, "llm.request.type": "chat", "llm.usage.total_tokens": 590}, []


def openlit(i: int, prompt: str, completion: str) -> Built:
    return "chat gpt-4o", {
        "telemetry.sdk.name": "openlit", "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
        **GENAI, "gen_ai.request.is_stream": True, "gen_ai.client.token.usage": 590,
        "gen_ai.server.time_to_first_token": 0.25, "service.name": "openlit-app",
    }, [("gen_ai.content.prompt", {"gen_ai.prompt": f"system: {SYSTEM}\nuser: {prompt}"}, 0.0),
        ("gen_ai.content.completion", {"gen_ai.completion": completion}, 1.9)]


def tool_span(i: int, prompt: str, completion: str) -> Built:
    return "execute_tool search", {"gen_ai.operation.name": "execute_tool",
                                   "gen_ai.tool.name": "search",
                                   "gen_ai.tool.call.arguments": json.dumps({"q": prompt[:80]})}, []


def http_span(i: int, prompt: str, completion: str) -> Built:
    return "POST", {"http.request.method": "POST", "server.address": "api.openai.com",
                    "url.full": "https://api.openai.com/v1/chat/completions"}, []


SHAPES: dict[str, Shape] = {
    "otel-v1.37": otel_v137, "otel-content-off": otel_content_off,
    "otel-v1.26-events": otel_v126_events, "openinference": openinference,
    "openinference-raw-io": openinference_raw, "openllmetry-legacy": openllmetry,
    "openllmetry-0.55": openllmetry_055, "openlit": openlit, "tool (not a call)": tool_span,
    "http (not a call)": http_span,
}


def texts() -> list[tuple[str, str]]:
    with CORPUS.open() as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(r["prompt"][:1500], r["completion"][:1500]) for r in rows]


def request(spans: Sequence[Span]) -> bytes:
    body = ExportTraceServiceRequest()
    resource_spans = body.resource_spans.add()
    resource_spans.resource.attributes.extend(key_values({"service.name": "bench"}))
    resource_spans.scope_spans.add().spans.extend(spans)
    return body.SerializeToString()


def shape_bodies(n: int, batch: int, only: str | None) -> dict[str, list[bytes]]:
    pairs = texts()
    bodies = {}
    for label, shape in SHAPES.items():
        if only is not None and label != only:
            continue
        spans = [make_span(i, *shape(i, *pairs[i % len(pairs)])) for i in range(n)]
        bodies[label] = [request(spans[i:i + batch]) for i in range(0, n, batch)]
    return bodies


def bench(args: argparse.Namespace) -> None:
    bodies = shape_bodies(args.spans, args.batch, args.only)
    print(f"collectors from: {extract_body.__module__} "
          f"({__import__('collectors').__file__}); {args.spans} spans per shape, "
          f"best of {args.repeats}")
    best = dict.fromkeys(bodies, math.inf)
    for _ in range(args.repeats):  # shapes interleaved, so a busy moment spreads over all
        for label, chunk in bodies.items():
            began = time.process_time()
            for body in chunk:
                extract_body("traces", body, "protobuf", 65_536)
            best[label] = min(best[label], time.process_time() - began)
    if not args.repeats:
        return  # built and decoded nothing: the baseline of an instruction count
    for label, seconds in best.items():
        print(f"  {label:22} {seconds / args.spans * 1e6:7.2f} µs/span")
    mean = sum(best.values()) / len(best) / args.spans * 1e6
    print(f"  {'mean over shapes':22} {mean:7.2f} µs/span")


# --- the seeded corpus of --dump ---------------------------------------------------------------

POOLS: dict[str, list[str]] = {
    "otel": ["gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system",
             "gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens",
             "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens",
             "gen_ai.usage.completion_tokens", "gen_ai.usage.total_tokens",
             "gen_ai.request.stream", "gen_ai.response.time_to_first_chunk",
             "gen_ai.response.finish_reasons", "gen_ai.input.messages", "gen_ai.output.messages",
             "gen_ai.system_instructions", "server.address", "error.type", "service.name"],
    "openinference": ["openinference.span.kind", "llm.provider", "llm.system", "llm.model_name",
                      "llm.request.model_name", "llm.response.model_name",
                      "llm.token_count.prompt", "llm.token_count.completion",
                      "llm.token_count.total", "llm.finish_reason", "time_to_first_token_ms",
                      "llm.input_messages.0.message.role", "llm.input_messages.0.message.content",
                      "llm.input_messages.1.message.contents.0.message_content.text",
                      "llm.output_messages.0.message.content", "llm.prompts",
                      "llm.prompts.0.prompt.text", "llm.choices.0.completion.text",
                      "input.value", "output.value"],
    "openllmetry": ["llm.request.type", "traceloop.span.kind", "llm.usage.total_tokens",
                    "llm.is_streaming", "gen_ai.is_streaming", "gen_ai.prompt.0.role",
                    "gen_ai.prompt.0.content", "gen_ai.prompt.1.user", "gen_ai.prompt.1.role",
                    "gen_ai.completion.0.content", "gen_ai.completion.0.finish_reason"],
    "openlit": ["telemetry.sdk.name", "gen_ai.request.is_stream", "gen_ai.client.token.usage",
                "gen_ai.server.time_to_first_token", "gen_ai.prompt", "gen_ai.completion"],
}
VALUES: dict[str, list[Any]] = {
    "gen_ai.operation.name": ["chat", "text_completion", "embeddings", "execute_tool", "rerank",
                              "search_memory", "vectordb", "completion"],
    "openinference.span.kind": ["LLM", "llm", "TOOL", "CHAIN", "RERANKER", "UNKNOWN"],
    "llm.request.type": ["chat", "completion", "embedding", "rerank", "unknown"],
    "traceloop.span.kind": ["workflow", "task", "tool", "other"],
    "telemetry.sdk.name": ["openlit", "opentelemetry"],
}
TEXTS: list[Any] = [
    "", "__REDACTED__", "FILTERED", "Hello there", "user: hi\nassistant: yo\nuser: again",
    '[{"role": "user", "content": "Hi"}]',
    '[{"role": "system", "parts": [{"type": "text", "content": "Be kind"}]},'
    ' {"role": "user", "parts": [{"type": "text", "content": "Question?"}]}]',
    '[{"role": "assistant", "finish_reason": "stop", "parts": [{"type": "text", "content": "A"}]}]',
    '{"messages": [{"role": "user", "content": "raw q"}], "system": "sys"}',
    '{"choices": [{"finish_reason": "length", "message": {"content": "raw a"}}]}',
    '[{"type": "text", "text": "part"}]', "[", "openai", "azure", "api.anthropic.com", "stop",
    7, 0, -1, 2.5, float("nan"), True, "42", ["stop", "error"], ["a", "b"],
]


JSON_TEXTS = [t for t in TEXTS if isinstance(t, str) and t[:1] in ("[", "{")]
CONTENT, FIRST_TOKEN = ["gen_ai.content.prompt", "gen_ai.content.completion"], {
    "openinference": ["First Token Stream Event"],
    "openllmetry": ["gen_ai.content.completion.chunk"],
}


def random_span(rng: random.Random, i: int, keys: Sequence[str], event_names: Sequence[str],
                event_texts: Sequence[Any]) -> Span:
    attrs = {}
    for key in rng.sample(list(keys), rng.randrange(1, min(len(keys), 12))):
        roles = ["user", "system", "assistant", "developer"] if key.endswith(".role") else None
        attrs[key] = rng.choice(roles or VALUES.get(key, TEXTS))
    events = []
    for _ in range(rng.randrange(4)):
        events.append((rng.choice(event_names), {"gen_ai.prompt": rng.choice(event_texts),
                                                 "gen_ai.completion": rng.choice(event_texts),
                                                 "exception.type": "Boom"},
                       rng.uniform(-0.5, 1.5)))
    span = make_span(i, rng.choice(["chat x", "openai.chat", "ChatCompletion", "GET"]), attrs,
                     events)
    span.status.code = rng.choice([0, 0, 2])  # type: ignore[assignment]
    return span


def dump_corpus() -> list[Span]:
    """The shapes, then spans of one convention (its attributes and events over GenAI's, v1.26
    events holding JSON, which is GenAI's shape, except on OpenLIT's and unmarked spans, where
    plain text is OpenLIT's), then spans of every convention's attributes and events mixed."""
    pairs = texts()
    spans = [make_span(i, *shape(i, *pairs[i % len(pairs)]))
             for shape in SHAPES.values() for i in range(5)]
    rng = random.Random(20_260_115)
    every_event = [*CONTENT, "exception", *(n for names in FIRST_TOKEN.values() for n in names)]
    for convention, pool in POOLS.items():
        keys = pool if convention == "otel" else POOLS["otel"] + pool
        names = every_event if convention == "otel" else [
            *CONTENT, "exception", *FIRST_TOKEN.get(convention, [])]
        values = JSON_TEXTS if convention in FIRST_TOKEN else TEXTS
        spans += [random_span(rng, len(spans), keys, names, values) for _ in range(3000)]
    mixed = [key for pool in POOLS.values() for key in pool]
    spans += [random_span(rng, len(spans), mixed, every_event, TEXTS) for _ in range(6000)]
    return spans


def dump(path: Path) -> None:
    with path.open("w") as out:
        for span in dump_corpus():
            found = extract_body("traces", request([span]), "protobuf", 65_536)
            call = found.calls[0]._asdict() if found.calls else None
            if call is not None:
                call["status"], call["content_source"] = str(call["status"]), int(
                    call["content_source"])
            out.write(json.dumps({"kinds": found.kinds, "call": call}, default=repr) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=1000, help="spans per shape")
    parser.add_argument("--batch", type=int, default=100, help="spans per request")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--only", choices=SHAPES, help="one shape alone")
    parser.add_argument("--dump", type=Path, help="write the seeded corpus's outputs here")
    args = parser.parse_args()
    if args.dump:
        dump(args.dump)
    else:
        bench(args)


if __name__ == "__main__":
    main()
