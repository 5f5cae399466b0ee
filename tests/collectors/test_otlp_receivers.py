"""The real daemon, fed by the real OpenTelemetry exporters and by raw HTTP clients.

Everything is checked the way a user checks it: `driftwatch calls --json` and /metrics.
"""

from __future__ import annotations

import gzip
import json
import re
import time
import zlib

from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors.otlp_json import parse_json
from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, raw_request
from tests.texts import banking_prompts

TRACE_ID = "5b8efff798038103d269b633813fc60c"
NOW_NS = time.time_ns()
SPAN_IDS = ["eee19b7ec3c1b174", "eee19b7ec3c1b175", "eee19b7ec3c1b176"]


def json_traces(spans: list[dict[str, object]], service: str = "node-app") -> bytes:
    """An OTLP/JSON body as the JS http/json exporter sends it (hex ids, camelCase)."""
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "js-genai"}, "spans": spans}],
    }]}).encode()


def chat_span(span_id: str, prompt: str, trace_id: str = TRACE_ID) -> dict[str, object]:
    return {
        "traceId": trace_id, "spanId": span_id, "name": "chat gpt-4o", "kind": 3,
        "startTimeUnixNano": str(NOW_NS), "endTimeUnixNano": str(NOW_NS + 1_500_000_000),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
            {"key": "gen_ai.input.messages", "value": {"stringValue": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": prompt}]}])}},
        ],
        "status": {},
        "someFieldFromTheFuture": {"x": 1},
    }


def post_traces(daemon: Daemon, body: bytes, content_type: str = "application/json",
                **headers: str) -> tuple[int, dict[str, str], bytes]:
    return raw_request("POST", daemon.http + "/v1/traces", body,
                       {"Content-Type": content_type, **headers})


def test_grpc_exporter_calls_are_stored_with_every_contract_field(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    prompts = banking_prompts(20)
    for prompt in prompts:
        app.chat(prompt, "Happy to help with that.", system="You are a bank's support bot.")
    app.flush()
    app.shutdown()

    assert app.exporter.failures == 0
    calls = daemon.calls()
    assert sorted(c["prompt"] for c in calls) == sorted(prompts)
    call = calls[0]
    assert re.fullmatch(r"[0-9a-f]{32}", call["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", call["span_id"])
    assert call["service"] == "support-bot"
    assert call["provider"] == "openai"
    assert call["model"] == "gpt-4o-mini"
    assert call["operation"] == "chat"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", call["start"])
    assert call["duration_s"] >= 0
    assert call["status"] == "ok" and call["error_type"] is None
    assert (call["input_tokens"], call["output_tokens"]) == (42, 17)
    assert call["ttft_s"] is None
    assert call["system_prompt"] == "You are a bank's support bot."
    assert call["completion"] == "Happy to help with that."
    assert call["content_captured"] is True


def test_http_protobuf_exporter_with_gzip_stores_calls(daemon: Daemon) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    app = LLMApp(otlp_exporter("http", daemon.http, compression=Compression.Gzip))
    for prompt in banking_prompts(10, offset=100):
        app.chat(prompt, "Sure.")
    app.chat("Why was I charged twice?", None, error="RateLimitError")
    app.flush()
    app.shutdown()

    assert app.exporter.failures == 0
    calls = daemon.calls()
    assert len(calls) == 11
    failed = [c for c in calls if c["status"] == "error"]
    assert [c["error_type"] for c in failed] == ["RateLimitError"]


def test_json_body_keeps_hex_ids_and_ignores_unknown_fields(daemon: Daemon) -> None:
    body = json_traces([chat_span(SPAN_IDS[0], "How do I reset my PIN?")])

    status, headers, data = post_traces(daemon, body)

    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(data) == {}
    [call] = daemon.calls()
    assert (call["trace_id"], call["span_id"]) == (TRACE_ID, SPAN_IDS[0])
    assert call["service"] == "node-app"
    assert call["prompt"] == "How do I reset my PIN?"


def test_deflate_bodies_are_accepted(daemon: Daemon) -> None:
    body = zlib.compress(json_traces([chat_span(SPAN_IDS[1], "Card not arrived")]))

    status, _, _ = post_traces(daemon, body, **{"Content-Encoding": "deflate"})

    assert status == 200
    assert [c["prompt"] for c in daemon.calls()] == ["Card not arrived"]


def test_malformed_span_is_rejected_alone_with_partial_success(daemon: Daemon) -> None:
    bad = chat_span("eee19b7ec3", "too short an id")  # 5 bytes, not 8
    body = json_traces([chat_span(SPAN_IDS[0], "good one"), bad])

    status, _, data = post_traces(daemon, body)

    assert status == 200
    partial = json.loads(data)["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "span_id" in partial["errorMessage"]
    assert [c["prompt"] for c in daemon.calls()] == ["good one"]
    assert daemon.metric("driftwatch_spans_refused_total", reason="malformed") == 1


def test_a_lone_surrogate_escaped_in_message_json_is_stored_as_a_replacement_char(
    daemon: Daemon,
) -> None:
    # "\ud800" is legal JSON but no UTF-8 can hold it; it once failed the whole group commit
    # with 503, which exporters retry forever.
    body = json_traces([chat_span(SPAN_IDS[0], "broken \ud800 emoji"),
                        chat_span(SPAN_IDS[1], "fine")])

    status, _, data = post_traces(daemon, body)

    assert status == 200, data
    prompts = {c["span_id"]: c["prompt"] for c in daemon.calls()}
    assert prompts == {SPAN_IDS[0]: "broken \ufffd emoji", SPAN_IDS[1]: "fine"}


def test_protobuf_partial_success_is_answered_in_protobuf(daemon: Daemon) -> None:
    request = parse_json(json_traces([]), ExportTraceServiceRequest)
    span = request.resource_spans[0].scope_spans[0].spans.add()
    span.trace_id, span.span_id, span.name = bytes(16), bytes(8), "all-zero ids"
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2

    status, headers, data = post_traces(daemon, request.SerializeToString(),
                                        "application/x-protobuf")

    assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(data)
    assert response.partial_success.rejected_spans == 1


def decode_status(data: bytes, content_type: str) -> status_pb2.Status:
    if content_type == "application/x-protobuf":
        return status_pb2.Status.FromString(data)
    return json_format.Parse(data, status_pb2.Status())


def test_bad_requests_get_their_status_and_keep_the_daemon_and_its_data(daemon: Daemon) -> None:
    assert post_traces(daemon, json_traces([chat_span(SPAN_IDS[2], "kept")]))[0] == 200
    valid = parse_json(json_traces([chat_span(SPAN_IDS[0], "x")]),
                       ExportTraceServiceRequest).SerializeToString()
    bomb = gzip.compress(b"\0" * (80 << 20))  # 80 MiB of zeros in ~80 KB, over the 64 MiB cap
    invalid_utf8 = valid.replace(b"gpt-4o", b"gpt-\xff\xfe")
    cases = [
        ("truncated protobuf", valid[: len(valid) // 2], "application/x-protobuf", {}, 400),
        ("invalid JSON", b'{"resourceSpans": [', "application/json", {}, 400),
        ("non-hex trace id", json_traces([chat_span("zz" * 8, "x")]), "application/json", {},
         400),
        ("invalid UTF-8 in a string", invalid_utf8, "application/x-protobuf", {}, 400),
        ("gzip bomb", bomb, "application/x-protobuf", {"Content-Encoding": "gzip"}, 413),
        ("corrupt gzip", b"\x1f\x8bnot gzip", "application/json", {"Content-Encoding": "gzip"},
         400),
        ("unknown encoding", valid, "application/x-protobuf", {"Content-Encoding": "br"}, 400),
        ("wrong content type", valid, "text/plain", {}, 415),
    ]
    for name, body, content_type, headers, expected in cases:
        status, response_headers, data = post_traces(daemon, body, content_type, **headers)
        assert status == expected, name
        error = decode_status(data, response_headers["Content-Type"].split(";")[0])
        assert error.message, name
    assert raw_request("GET", daemon.http + "/v1/traces")[0] == 405
    assert raw_request("POST", daemon.http + "/v2/traces", b"{}")[0] == 404

    assert daemon.alive()
    assert [c["prompt"] for c in daemon.calls()] == ["kept"]


def test_body_over_the_configured_cap_is_refused_with_413(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(receivers={"otlp_http": {"max_body_size": "64KiB"}})
    big = json_traces([chat_span(SPAN_IDS[0], "x" * 70_000)])

    status, _, data = post_traces(daemon, big)

    assert status == 413
    assert "cap" in json.loads(data)["message"]


def test_huge_attribute_values_are_truncated_not_refused(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"max_attribute_chars": 1000})
    body = json_traces([chat_span(SPAN_IDS[0], "y" * 3_000_000)])

    assert post_traces(daemon, body)[0] == 200

    [call] = daemon.calls()
    assert call["prompt"] == "y" * 1000


def test_grpc_garbage_body_is_invalid_argument(daemon: Daemon) -> None:
    import grpc

    channel = grpc.insecure_channel(daemon.grpc)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    try:
        export(b"\x0a\xff\xff\xff\xff\x0f", timeout=10)
        raise AssertionError("garbage was accepted")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ExportTraceServiceRequest" in (err.details() or "")
    finally:
        channel.close()
    assert daemon.alive()


def nested_value(levels: int) -> str:
    """An OTLP/JSON AnyValue `levels` arrays deep, as text (json.dumps itself would recurse)."""
    value = '{"stringValue": "bottom"}'
    for _ in range(levels):
        value = '{"arrayValue": {"values": [' + value + "]}}"
    return value


def test_json_nested_600_levels_is_a_400_with_a_message_not_a_500(daemon: Daemon) -> None:
    # It was a RecursionError in the decoder: 500, which exporters retry.
    span = json.dumps(chat_span(SPAN_IDS[0], "deep")).replace(
        '"attributes": [', '"attributes": [{"key": "deep", "value": ' + nested_value(600) + "}, ",
        1)
    body = json_traces([]).replace(b'"spans": []', b'"spans": [' + span.encode() + b"]")

    status, _, data = post_traces(daemon, body)

    assert status == 400
    assert "nested deeper than" in json.loads(data)["message"]
    assert daemon.metric("driftwatch_receiver_requests_total", transport="http",
                         code="400") == 1
    assert post_traces(daemon, json_traces([chat_span(SPAN_IDS[1], "shallow")]))[0] == 200
    assert [c["prompt"] for c in daemon.calls()] == ["shallow"]
