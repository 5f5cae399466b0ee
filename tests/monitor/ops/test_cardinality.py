"""A flood of label values from the wire (a service per tenant, a model per fine-tune,
error types that carry messages) leaves /metrics bounded: every family stops at the
configured number of label sets plus one overflow series, and says how much overflowed."""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict

from tests.harness import Daemon, get, raw_request

LIMIT = 40
FLOOD = 300


def flood_body(i: int, rng: random.Random) -> bytes:
    now = time.time_ns()
    spans = [{
        "traceId": f"{i + 1:016x}{j + 1:016x}", "spanId": f"{j + 1:016x}", "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000_000),
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
            {"key": "gen_ai.request.model",
             "value": {"stringValue": f"ft:gpt-4o-mini:org:{rng.getrandbits(40):x}"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
            {"key": "error.type", "value": {"stringValue": f"Quota of user{j}@example.com"}},
        ],
        "status": {"code": 2, "message": f"Rate limit exceeded for user{j}@example.com"},
    } for j in range(3)]
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": f"tenant-{i}"}}]},
        "scopeSpans": [{"spans": spans}]}]}).encode()


def label_sets(exposition: str) -> dict[str, set[str]]:
    """Family name -> its distinct label sets (histogram buckets folded into their series)."""
    found: dict[str, set[str]] = defaultdict(set)
    for line in exposition.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, _, rest = line.partition("{")
        labels = ",".join(p for p in rest.rsplit("}", 1)[0].split(",")
                          if not p.startswith("le="))
        for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
            name = name.removesuffix(suffix)
        found[name].add(labels)
    return found


def test_a_flood_of_services_models_and_error_types_leaves_every_family_bounded(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(metrics={"cardinality_limit": LIMIT},
                                  latency={"min_samples": 10}, jobs={"max_segments": 4 * FLOOD})
    rng = random.Random(7)
    for i in range(FLOOD):
        status, _, _ = raw_request("POST", daemon.http + "/v1/traces", flood_body(i, rng),
                                   {"Content-Type": "application/json"})
        assert status == 200
    assert len({c["service"] for c in daemon.calls()}) == FLOOD  # every call is stored
    status, _, _ = raw_request("POST", daemon.ops + "/api/v1/jobs/latency/run", b"{}",
                               {"Content-Type": "application/json"})
    assert status == 200

    status, text = get(daemon.ops + "/metrics")
    assert status == 200
    families = label_sets(text)
    duration = families["gen_ai_client_operation_duration_seconds"]
    assert len(duration) == LIMIT + 1 and 'otel_metric_overflow="true"' in duration
    for name, sets in families.items():
        assert len(sets) <= LIMIT + 1, f"{name} has {len(sets)} label sets"
    # The latency job has a result per service and per model (three each): 1,200 segments.
    insufficient = families["driftwatch_detector_insufficient_data"]
    assert len(insufficient) == LIMIT + 1 and 'otel_metric_overflow="true"' in insufficient
    assert daemon.metric("driftwatch_detector_insufficient_data",
                         otel_metric_overflow="true") == 1  # the overflowed ones' largest
    assert daemon.metric("driftwatch_metric_label_sets_overflowed_total",
                         metric="driftwatch_detector_insufficient_data") == 4 * FLOOD - LIMIT
    assert "user0@example.com" not in text  # a message is never a label
    assert daemon.metric("driftwatch_metric_label_sets_overflowed_total",
                         metric="gen_ai_client_operation_duration_seconds") == 3 * FLOOD - LIMIT
    log = daemon.log_path.read_text() if daemon.log_path else ""
    assert log.count("gen_ai_client_operation_duration_seconds reached its limit") == 1
