"""Mutated OTLP bodies against the real daemon: whatever arrives, the answer is 2xx or 4xx,
the daemon stays up, and the calls it already stored stay exactly as they were.

Seeds are valid export requests of both signals (traces and logs) in both encodings
(protobuf and JSON), sent over OTLP/HTTP and, for protobuf, over gRPC. Hypothesis mutates
them the way a broken or hostile client would: flipped, dropped, inserted and repeated
bytes, truncations, splices of two bodies, and for JSON, values replaced by others of any
type (huge and negative numbers, wrong kinds), or nested thousands of levels deep.
Derandomized, so a failure reproduces; Hypothesis prints the failing body.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

from tests.collectors.fixtures import as_json, log_event, span
from tests.harness import Daemon, get, raw_request
from tests.texts import banking_prompts

NOW_NS = time.time_ns()
EXAMPLES = int(os.environ.get("DRIFTWATCH_FUZZ_EXAMPLES", "150"))  # per transport and seed
GRPC_METHODS = {"traces": "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                "logs": "/opentelemetry.proto.collector.logs.v1.LogsService/Export"}


def resource(service: str) -> Resource:
    return Resource(attributes=[KeyValue(key="service.name",
                                         value=AnyValue(string_value=service))])


def trace_request(prompts: list[str], first_trace: int) -> ExportTraceServiceRequest:
    spans = [span("chat gpt-4o", {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.input.messages": as_json([{"role": "user", "parts": [
            {"type": "text", "content": prompt}]}]),
        "gen_ai.output.messages": as_json([{"role": "assistant", "parts": [
            {"type": "text", "content": "Happy to help."}], "finish_reason": "stop"}]),
    }, trace_id=(first_trace + i).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
        start=NOW_NS)
        for i, prompt in enumerate(prompts)]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource("fuzzed-app"), scope_spans=[ScopeSpans(spans=spans)])])


def logs_request(prompts: list[str], first_trace: int) -> ExportLogsServiceRequest:
    records = [log_event("gen_ai.user.message", {"content": prompt},
                         {"gen_ai.system": "openai"},
                         trace_id=(first_trace + i).to_bytes(16, "big"),
                         span_id=(i + 1).to_bytes(8, "big"))
               for i, prompt in enumerate(prompts)]
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=resource("fuzzed-app"), scope_logs=[ScopeLogs(log_records=records)])])


def otlp_json(message: ExportTraceServiceRequest | ExportLogsServiceRequest) -> bytes:
    """OTLP/JSON as the spec writes it: ids in hex (protobuf's own JSON writes base64)."""
    from google.protobuf import json_format

    tree = json_format.MessageToDict(message)

    def hexify(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (_hex(v) if k in ("traceId", "spanId", "parentSpanId") else hexify(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [hexify(v) for v in node]
        return node

    return json.dumps(hexify(tree)).encode()


def _hex(b64: str) -> str:
    import base64

    return base64.b64decode(b64).hex()


PROMPTS = banking_prompts(6)
SEEDS: dict[tuple[str, str], bytes] = {
    ("traces", "protobuf"): trace_request(PROMPTS[:3], 1 << 100).SerializeToString(),
    ("traces", "json"): otlp_json(trace_request(PROMPTS[3:], 2 << 100)),
    ("logs", "protobuf"): logs_request(PROMPTS[:3], 1 << 100).SerializeToString(),
    ("logs", "json"): otlp_json(logs_request(PROMPTS[3:], 2 << 100)),
}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
    | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=12)


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, *, as_json_tree: bool) -> bytes:
    """One mutation (or a few) of a valid body."""
    body = bytearray(seed)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "drop", "insert", "repeat", "truncate", "splice",
                                   *(["value"] * 3 + ["nest"] if as_json_tree else [])]))
        at = draw(st.integers(0, max(len(body) - 1, 0)))
        if op == "flip" and body:
            body[at] ^= draw(st.integers(1, 255))
        elif op == "drop":
            del body[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif op == "repeat":
            body[at:at] = body[at:at + draw(st.integers(1, 256))] * draw(st.integers(2, 50))
        elif op == "truncate":
            del body[at:]
        elif op == "splice":
            other = draw(st.sampled_from(list(SEEDS.values())))
            body = body[:at] + other[draw(st.integers(0, len(other) - 1)):]
        elif op == "value":
            body = bytearray(_replace_a_value(bytes(body), draw))
        elif op == "nest":  # a value nested deeper than any recursive parser allows
            depth = draw(st.integers(200, 2_000))
            nested = b"[" * depth + b"1" + b"]" * depth
            body = bytearray(_replace_a_value(bytes(body), draw, '"__nest__"').replace(
                b'"__nest__"', nested, 1))
    return bytes(body)


def _replace_a_value(body: bytes, draw: st.DrawFn, value: Any = None) -> bytes:
    """The body with one JSON value replaced by `value`, or else by a drawn one."""
    try:
        tree = json.loads(body)
    except ValueError:
        return body
    nodes: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = (node.items() if isinstance(node, dict) else enumerate(node)
                 if isinstance(node, list) else ())
        for key, value in items:
            nodes.append((node, key))
            walk(value)

    walk(tree)
    if not nodes:
        return body
    parent, key = draw(st.sampled_from(nodes))
    parent[key] = draw(JSON_VALUES) if value is None else json.loads(value)
    return json.dumps(tree).encode()


def valid_export(daemon: Daemon, first_trace: int) -> None:
    status, _, _ = raw_request("POST", daemon.http + "/v1/traces",
                               trace_request(PROMPTS[:3], first_trace).SerializeToString(),
                               {"Content-Type": "application/x-protobuf"})
    assert status == 200


def stored_before_fuzzing(daemon: Daemon) -> list[dict[str, Any]]:
    return [c for c in daemon.calls() if c["trace_id"].startswith(f"{3 << 100:032x}"[:8])]


@pytest.mark.slow
@pytest.mark.parametrize("signal,encoding", sorted(SEEDS))
def test_mutated_bodies_get_2xx_or_4xx_and_never_touch_stored_calls(
        daemon: Daemon, signal: str, encoding: str) -> None:
    valid_export(daemon, 3 << 100)
    before = stored_before_fuzzing(daemon)
    assert len(before) == 3
    content_type = "application/json" if encoding == "json" else "application/x-protobuf"
    answers: dict[int, int] = {}

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(mutated(SEEDS[signal, encoding], as_json_tree=encoding == "json"))
    def over_http(body: bytes) -> None:
        status, _, reply = raw_request("POST", f"{daemon.http}/v1/{signal}", body,
                                       {"Content-Type": content_type})
        answers[status] = answers.get(status, 0) + 1
        assert 200 <= status < 500, f"{status}: {reply[:300]!r}"

    over_http()
    if encoding == "protobuf":
        channel = grpc.insecure_channel(daemon.grpc)
        export = channel.unary_unary(GRPC_METHODS[signal], request_serializer=lambda b: b,
                                     response_deserializer=lambda b: b)

        @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))
        @given(mutated(SEEDS[signal, encoding], as_json_tree=False))
        def over_grpc(body: bytes) -> None:
            try:
                export(body, timeout=10)
            except grpc.RpcError as err:
                assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT,
                                      grpc.StatusCode.RESOURCE_EXHAUSTED), (
                    f"{err.code()}: {err.details()}")

        try:
            over_grpc()
        finally:
            channel.close()

    assert daemon.alive() and get(daemon.ops + "/healthz")[0] == 200
    assert stored_before_fuzzing(daemon) == before
    assert answers.get(400, 0) > 0, f"no mutation was refused, so none was checked: {answers}"
    valid_export(daemon, 4 << 100)  # and ingest still works
    assert any(c["trace_id"].startswith(f"{4 << 100:032x}"[:8]) for c in daemon.calls())
