"""The GenAI client histograms expose exactly what prometheus_client's Histogram would for the
same observations, and count a wrapped call once."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from monitor.core.components import CallQuery, Fresh, WriteBatch
from monitor.core.metrics import SelfMetrics
from monitor.core.records import CallStatus, LLMCall
from monitor.ops.cardinality import CardinalityLimits
from monitor.ops.genai_metrics import DURATION_BUCKETS, TOKEN_BUCKETS, GenAiMetrics, MeteredSink
from monitor.store.sqlite import SqliteStore
from monitor.store.writer import CommitWriter
from tests.harness import Daemon
from tests.monitor.jobs.test_segments import send

LABELS = ["service_name", "gen_ai_provider_name", "gen_ai_request_model",
          "gen_ai_operation_name"]


def call(i: int, **fields: object) -> LLMCall:
    rng = random.Random(i)
    values: dict[str, object] = dict(
        trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", parent_span_id=None,
        service=rng.choice(["support-bot", "search"]), provider="openai",
        request_model=rng.choice(["gpt-4o", "gpt-4o-mini"]), response_model=None,
        operation="chat", start_ns=1_700_000_000_000_000_000 + i,
        # bucket edges included: a value on an edge belongs to that bucket (le)
        duration_s=rng.choice([0.01, 0.02, 0.5, 81.92, 100.0, rng.random() * 30]),
        status=rng.choice([CallStatus.OK, CallStatus.ERROR]), error_type=None,
        input_tokens=rng.choice([1, 4, 5, 1000, None]), output_tokens=rng.randint(0, 5000))
    values.update(fields)
    return LLMCall(**values)  # type: ignore[arg-type]


def exposition(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line and "first_token" not in line]


def test_exposition_matches_prometheus_client_histograms() -> None:
    calls = [call(i) for i in range(2_000)]
    ours = CollectorRegistry()
    GenAiMetrics(ours, CardinalityLimits()).observe(calls)

    reference = CollectorRegistry()
    duration = Histogram("gen_ai_client_operation_duration_seconds", "GenAI operation duration",
                         [*LABELS, "error_type"], buckets=DURATION_BUCKETS, registry=reference)
    tokens = Histogram("gen_ai_client_token_usage", "Input and output tokens per GenAI operation",
                       [*LABELS, "gen_ai_token_type"], buckets=TOKEN_BUCKETS,
                       registry=reference)
    for c in calls:
        labels = (c.service, c.provider or "", c.request_model or "", c.operation)
        error = (c.error_type or "error") if c.status is CallStatus.ERROR else ""
        duration.labels(*labels, error).observe(c.duration_s)
        if c.input_tokens is not None:
            tokens.labels(*labels, "input").observe(c.input_tokens)
        if c.output_tokens is not None:
            tokens.labels(*labels, "output").observe(c.output_tokens)

    assert exposition(ours) == exposition(reference)


class Committed:
    """A CallSink that commits nothing and remembers what it was given."""

    def __init__(self) -> None:
        self.batches: list[WriteBatch] = []

    async def submit(self, batch: WriteBatch) -> None:
        self.batches.append(batch)


def test_a_wrapper_and_the_call_it_wraps_are_counted_once() -> None:
    registry = CollectorRegistry()
    inner_sink = Committed()
    sink = MeteredSink(inner_sink, GenAiMetrics(registry, CardinalityLimits()))
    outer = call(1, ttft_s=0.3)
    inner = call(2, trace_id=outer.trace_id, parent_span_id=outer.span_id, ttft_s=0.2)

    asyncio.run(sink.submit(WriteBatch(calls=[outer, inner])))

    assert len(inner_sink.batches) == 1
    count = registry.get_sample_value(
        "gen_ai_server_time_to_first_token_seconds_count",
        dict(zip(LABELS, (inner.service, "openai", inner.request_model, "chat"), strict=True)))
    assert count == 1
    assert registry.get_sample_value(
        "gen_ai_server_time_to_first_token_seconds_sum",
        dict(zip(LABELS, (inner.service, "openai", inner.request_model, "chat"),
                 strict=True))) == 0.2


def test_past_the_limit_new_label_sets_share_one_overflow_series_and_are_counted() -> None:
    registry = CollectorRegistry()
    metrics = GenAiMetrics(registry, CardinalityLimits(3, registry))
    calls = [call(i, service=f"tenant-{i}", status=CallStatus.OK, input_tokens=None,
                  output_tokens=None, duration_s=1.0) for i in range(10)]

    metrics.observe(calls)
    metrics.observe([call(0, service="tenant-0", status=CallStatus.OK, duration_s=1.0)])

    name = "gen_ai_client_operation_duration_seconds"
    series = {line.split("{")[1].split("}")[0] for line in exposition(registry)
              if line.startswith(f"{name}_count")}
    assert len(series) == 4  # the first three tenants, and the overflow series
    assert registry.get_sample_value(f"{name}_count", {"otel_metric_overflow": "true"}) == 7
    assert registry.get_sample_value(f"{name}_count", {
        "service_name": "tenant-0", "gen_ai_provider_name": "openai",
        "gen_ai_request_model": calls[0].request_model, "gen_ai_operation_name": "chat",
        "error_type": ""}) == 2  # an admitted label set keeps its own series
    assert registry.get_sample_value("driftwatch_metric_label_sets_overflowed_total",
                                     {"metric": name}) == 7


def test_an_error_type_that_reads_like_a_message_is_folded_into_other() -> None:
    registry = CollectorRegistry()
    GenAiMetrics(registry, CardinalityLimits()).observe([
        call(1, status=CallStatus.ERROR, error_type="Rate limit exceeded for user0@example.com"),
        call(2, status=CallStatus.ERROR, error_type="openai.RateLimitError")])

    labels = {line.split('error_type="')[1].split('"')[0] for line in exposition(registry)
              if 'error_type="' in line}
    assert labels == {"_OTHER", "openai.RateLimitError"}


def operations_counted(registry: CollectorRegistry) -> float:
    return sum(s.value for metric in registry.collect() for s in metric.samples
               if s.name == "gen_ai_client_operation_duration_seconds_count")


def test_a_re_delivered_span_is_counted_once_even_within_one_group_commit(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "calls.db")
    writer = CommitWriter(store, SelfMetrics(), max_items=100, max_bytes=1 << 20,
                          commit_max_items=100, retry_after_s=1.0)
    registry = CollectorRegistry()
    sink = MeteredSink(writer, GenAiMetrics(registry, CardinalityLimits()))
    a, b = call(1), call(2)

    async def deliver() -> list[Fresh]:
        # Queued before the writer starts: one group commit holding a retry of `a` (twice).
        first = asyncio.ensure_future(sink.submit(WriteBatch(calls=[a, b])))
        retry = asyncio.ensure_future(sink.submit(WriteBatch(calls=[a, a])))
        await asyncio.sleep(0)
        await writer.start()
        marks = list(await asyncio.gather(first, retry))
        marks.append(await sink.submit(WriteBatch(calls=[b])))  # after its commit
        await writer.stop()
        return marks

    assert asyncio.run(deliver()) == [(True, True), (False, False), (False,)]
    assert operations_counted(registry) == 2
    assert len(store.calls(CallQuery())) == 2
    store.close()


def test_the_daemon_counts_a_re_delivered_request_once(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon()
    send(daemon, "chat", 5)
    send(daemon, "chat", 5)  # the exporter retries after a lost acknowledgement
    assert daemon.metric("gen_ai_client_operation_duration_seconds_count") == 5
    assert daemon.metric("driftwatch_llm_calls_duplicate_total") == 5
