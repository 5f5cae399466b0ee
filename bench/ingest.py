"""Ingest benchmark: LLM spans from real OpenTelemetry exporters into a running daemon.

    .venv/bin/python bench/ingest.py                     # 100,000 calls, HTTP and gRPC
    .venv/bin/python bench/ingest.py --calls 20000 --senders 2
    .venv/bin/python bench/ingest.py --stages --calls 20000   # CPU per stage, no network

Starts `driftwatch run` on a temporary store and free loopback ports, then sender processes
(half OTLP/HTTP protobuf, half OTLP/gRPC, several exporter threads each) export chat spans
with OTel GenAI v1.37 attributes and 300-1,500-character prompts and completions (real text
from corpora/long_texts.jsonl). Spans are built before the clock starts; the exporters'
encoding runs inside the measurement, on the same two cores as the daemon.

Prints end-to-end calls/s (first send to last acknowledged export: an acknowledgement means
committed), export latency p50/p99, the daemon's peak RSS (its process and its extraction
workers, each one's peak added up), and checks the store holds every call exactly once.
The baseline printed beside it is the same senders against a sink that acknowledges without
decoding or storing anything: the ceiling the clients impose here. The CPU columns (the
daemon with its workers, of which the daemon process alone, and the senders over their
sending) do not depend on what else the machine runs, as calls/s does on a shared one.
`--detectors off` runs the daemon without drift and toxicity, so without the embedding
model in memory; `--prefill 1000000` starts it on a store that already holds a million
calls, where each commit costs more (see bench/store_growth.py). The run ends with a check
against the 20,000 calls/s target: the CPU per call of senders and daemon beside the 100 µs
per call that rate leaves on two cores, so it shows which side a run's rate is bounded by.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET_CALLS_PER_S = 20_000  # issue 2's target on the 2-core development machine
sys.path.insert(0, str(REPO))


def load_pairs() -> list[tuple[str, str]]:
    with (REPO / "corpora" / "long_texts.jsonl").open() as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(r["prompt"], r["completion"]) for r in rows]


def build_spans(n: int, offset: int) -> list[Any]:
    """n finished SDK spans (ReadableSpan) of chat calls, made through the real SDK tracer."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult as R

    spans: list[Any] = []

    class Keep(SpanExporter):
        def export(self, batch: Any) -> R:
            spans.extend(batch)
            return R.SUCCESS

    provider = TracerProvider(resource=Resource.create({"service.name": f"bench-{offset % 4}"}))
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    pairs = load_pairs()
    for i in range(n):
        prompt, completion = pairs[(offset + i) % len(pairs)]
        model = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4")[i % 3]
        with tracer.start_as_current_span(f"chat {model}", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": len(prompt) // 4,
            "gen_ai.usage.output_tokens": len(completion) // 4,
            "gen_ai.response.finish_reasons": ["stop"], "server.address": "api.openai.com",
            "gen_ai.input.messages": json.dumps([
                {"role": "system", "parts": [{"type": "text", "content": "Be helpful."}]},
                {"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                {"type": "text", "content": completion}], "finish_reason": "stop"}]),
        }):
            pass
    return spans


def make_exporter(protocol: str, endpoint: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as G

        return G(endpoint=endpoint, insecure=True, timeout=60)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as H

    return H(endpoint=f"http://{endpoint}/v1/traces", timeout=60)


class ReplayClient:
    """Sends OTLP request bodies the SDK encoded beforehand, over a kept-alive connection."""

    def __init__(self, protocol: str, endpoint: str) -> None:
        self.protocol = protocol
        if protocol == "grpc":
            import grpc

            self._channel = grpc.insecure_channel(endpoint)
            self._call = self._channel.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=None, response_deserializer=None)
        else:
            import http.client

            host, port = endpoint.rsplit(":", 1)
            self._conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def export(self, body: bytes) -> bool:
        """One request; retries after the server's Retry-After, as exporters do."""
        for _ in range(20):
            if self.protocol == "grpc":
                import grpc

                try:
                    self._call(body, timeout=60)
                    return True
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE:
                        return False
            else:
                self._conn.request("POST", "/v1/traces", body,
                                   {"Content-Type": "application/x-protobuf"})
                response = self._conn.getresponse()
                response.read()
                if response.status == 200:
                    return True
                if response.status != 503:
                    return False
            time.sleep(0.2)
        return False

    def shutdown(self) -> None:
        if self.protocol == "grpc":
            self._channel.close()
        else:
            self._conn.close()


def sender(mode: str, protocol: str, endpoint: str, n: int, offset: int, threads: int,
           batch: int, start: Any, ready: Any, out: Any) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    spans = build_spans(n, offset)
    chunks: list[Any] = [spans[i:i + batch] for i in range(0, len(spans), batch)]
    if mode == "replay":
        chunks = [encode_spans(chunk).SerializeToString() for chunk in chunks]
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def work(mine: list[Any]) -> None:
        nonlocal failures
        client = (make_exporter(protocol, endpoint) if mode == "exporters"
                  else ReplayClient(protocol, endpoint))
        for chunk in mine:
            began = time.perf_counter()
            result = client.export(chunk)
            ok = result is True or getattr(result, "name", "") == "SUCCESS"
            with lock:
                latencies.append(time.perf_counter() - began)
                failures += not ok
        client.shutdown()

    workers = [threading.Thread(target=work, args=(chunks[i::threads],)) for i in range(threads)]
    ready.set()
    start.wait()
    t0, cpu0 = time.time(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put({"t0": t0, "t1": time.time(), "latencies": latencies, "failures": failures,
             "sent": n, "cpu_s": time.process_time() - cpu0})


def template_calls(n: int) -> list[Any]:
    """n LLMCalls as the daemon extracts them from `build_spans`, to copy with new ids."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    from collectors.extract import extract_traces

    spans = build_spans(n, 0)
    return [c for i in range(0, n, 512)
            for c in extract_traces(encode_spans(spans[i:i + 512]), 65_536).calls]


def prefill(path: Path, rows: int) -> None:
    """A store already holding `rows` calls (copies of real ones with random W3C ids, over
    the past day), as a daemon has after running a while: the store's cost grows with its
    table (bench/store_growth.py)."""
    from monitor.core.components import WriteBatch
    from monitor.store.sqlite import SqliteStore

    calls = template_calls(4096)
    began, day_ns = time.monotonic(), 86_400 * 10**9
    first_ns = time.time_ns() - day_ns
    store = SqliteStore(path)
    for done in range(0, rows, len(calls)):
        batch = [c._replace(trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(),
                            start_ns=first_ns + (done + i) * (day_ns // rows))
                 for i, c in enumerate(calls[:rows - done])]
        store.write(WriteBatch(calls=batch))
    store.close()
    print(f"prefilled the store with {rows:,} calls in {time.monotonic() - began:.0f}s")


DETECTORS_OFF = {"drift": {"enabled": False}, "toxicity": {"enabled": False}}


def start_daemon(tmp: Path, overrides: dict[str, Any] | None = None
                 ) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`driftwatch run` on free loopback ports and a store in `tmp`, on its defaults (the
    embedding model loaded at start) but for `overrides`, top-level config sections;
    returns the process and its banner's endpoints (otlp_grpc, otlp_http, ops)."""
    import yaml

    config = tmp / "bench.yaml"
    config.write_text(yaml.safe_dump({
        "receivers": {"otlp_grpc": {"endpoint": "127.0.0.1:0"},
                      "otlp_http": {"endpoint": "127.0.0.1:0"}},
        "ops": {"endpoint": "127.0.0.1:0"}, "store": {"path": str(tmp / "bench.db")},
        "log": {"level": "WARNING"}, **(overrides or {})}))
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    endpoints = dict(p.split("=", 1) for p in line.split("listening:", 1)[1].split())
    return proc, endpoints


class NullSink:
    """Acknowledges every export without decoding it: what the senders alone can push."""

    def __init__(self) -> None:
        import grpc
        from aiohttp import web

        self.http_port = 0
        self._ready = threading.Event()
        self._grpc = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(8),
                                 options=[("grpc.max_receive_message_length", 64 << 20)])
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: b"", request_deserializer=None, response_serializer=None)})
        self._grpc.add_generic_rpc_handlers((handler,))
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()

        async def ok(request: web.Request) -> web.Response:
            await request.read()
            return web.Response(body=b"", content_type="application/x-protobuf")

        def run() -> None:
            import asyncio

            async def main() -> None:
                app = web.Application(client_max_size=1 << 30)
                app.router.add_post("/v1/traces", ok)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                self._ready.set()
                await asyncio.Event().wait()

            asyncio.run(main())

        threading.Thread(target=run, daemon=True).start()
        self._ready.wait()


def run_senders(endpoints: dict[str, str], args: argparse.Namespace, mode: str,
                receiver_pid: int | None = None) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    per = args.calls // args.senders
    procs, readies = [], []
    for i in range(args.senders):
        protocol = args.protocols[i % len(args.protocols)]
        ready = ctx.Event()
        p = ctx.Process(target=sender, args=(
            mode, protocol, endpoints[f"otlp_{protocol}"], per, i * per, args.threads, args.batch,
            start, ready, out))
        p.start()
        procs.append(p)
        readies.append(ready)
    for r in readies:
        r.wait()
    gc_before = gc_pause_seconds(endpoints.get("ops"))
    before = cpu_seconds(receiver_pid) if receiver_pid else (0.0, 0.0)
    main_before = sum(cpu_seconds(receiver_pid, descendants=False)) if receiver_pid else 0.0
    idle_rss = rss_mb(receiver_pid, "VmRSS") if receiver_pid else math.nan
    start.set()
    results = [out.get() for _ in procs]
    after = cpu_seconds(receiver_pid) if receiver_pid else (math.nan, math.nan)
    main_after = (sum(cpu_seconds(receiver_pid, descendants=False)) if receiver_pid
                  else math.nan)
    gc_after = gc_pause_seconds(endpoints.get("ops"))
    for p in procs:
        p.join()
    latencies = sorted(x for r in results for x in r["latencies"])
    elapsed = max(r["t1"] for r in results) - min(r["t0"] for r in results)
    sent = sum(r["sent"] for r in results)
    return {"sent": sent, "elapsed": elapsed, "rate": sent / elapsed,
            "p50": latencies[len(latencies) // 2],
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "failures": sum(r["failures"] for r in results),
            "sender_cpu_us": sum(r["cpu_s"] for r in results) / sent * 1e6,
            "receiver_cpu_us": (after[0] + after[1] - before[0] - before[1]) / sent * 1e6,
            "receiver_sys_us": (after[1] - before[1]) / sent * 1e6,
            "receiver_main_us": (main_after - main_before) / sent * 1e6, "idle_rss": idle_rss,
            "receiver_gc_us": (gc_after - gc_before) / sent * 1e6}


def gc_pause_seconds(ops: str | None) -> float:
    """The daemon's garbage-collection pauses so far, from its /metrics (0 for a sink)."""
    if ops is None:
        return 0.0
    from urllib.request import urlopen

    with urlopen(f"{ops}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("driftwatch_gc_pause_seconds_total"))


def family(pid: int) -> list[int]:
    """The process and its descendants (the daemon's extraction workers and forkserver)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    found, frontier = [pid], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def cpu_seconds(pid: int, *, descendants: bool = True) -> tuple[float, float]:
    """(user, system) CPU seconds so far of a process, its threads and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in family(pid) if descendants else [pid]:
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / tick
        system += int(fields[12]) / tick
    return user, system


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """The peak (VmHWM) or current (VmRSS) resident memory of a process and its descendants,
    added up (pages they share are counted once per process, so this errs high)."""
    total = 0.0
    for member in family(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) / 1024
    return total


def stages(args: argparse.Namespace) -> None:
    """CPU per call of each stage, run one after another in this process, no network."""
    import pickle

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from prometheus_client import CollectorRegistry

    from collectors.extract import extract_traces
    from monitor.core.components import WriteBatch
    from monitor.ops.cardinality import CardinalityLimits
    from monitor.ops.genai_metrics import GenAiMetrics
    from monitor.store.sqlite import SqliteStore

    spans = build_spans(args.calls, 0)
    chunks = [spans[i:i + args.batch] for i in range(0, len(spans), args.batch)]
    best: dict[str, float] = {}

    def timed(stage: str, work: Callable[..., Any], *args: Any) -> Any:
        began = time.process_time()  # all threads: the store's checkpointer counts too
        out = work(*args)
        best[stage] = min(best.get(stage, math.inf), time.process_time() - began)
        return out

    def extract(requests: list[Any]) -> list[Any]:
        return [extract_traces(request, 65_536) for request in requests]

    def round_trip(bodies: list[bytes], found: list[Any]) -> None:
        """What crossing to a worker and back costs in pickling (the pipes' copies aside)."""
        for body, extracted in zip(bodies, found, strict=True):
            pickle.loads(pickle.dumps(("traces", body, "protobuf", 65_536), protocol=5))
            pickle.loads(pickle.dumps(("ok", extracted), protocol=5))

    def write(store: SqliteStore, calls: list[Any]) -> None:
        for i in range(0, len(calls), commit):
            store.write(WriteBatch(calls=calls[i:i + commit]))

    commit = args.commit
    for _ in range(args.repeat):  # the least of each: other jobs only ever add time
        bodies = timed("encode", lambda: [encode_spans(c).SerializeToString() for c in chunks])
        requests = timed("decode", lambda b: [ExportTraceServiceRequest.FromString(x)
                                              for x in b], bodies)
        found = timed("extract", extract, requests)
        timed("pickle", round_trip, bodies, found)
        calls = [c for extracted in found for c in extracted.calls]
        timed("metrics", GenAiMetrics(CollectorRegistry(), CardinalityLimits()).observe, calls)
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "stages.db")
            timed("store", write, store, calls)
            store.close()
    n = len(calls)
    us = {stage: f"{seconds / n * 1e6:.1f}" for stage, seconds in best.items()}
    print(f"\nCPU µs per call, {n:,} calls, {args.batch} per request, {args.commit} per commit, "
          f"least of {args.repeat} runs\n"
          "| SDK encode (exporter side) | protobuf decode | extraction | pickling to a worker "
          "and back | GenAI metrics | store write + commit |\n|---|---|---|---|---|---|\n"
          f"| {us['encode']} | {us['decode']} | {us['extract']} | {us['pickle']} "
          f"| {us['metrics']} | {us['store']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4, help="sender processes")
    parser.add_argument("--threads", type=int, default=4, help="exporter threads per process")
    parser.add_argument("--batch", type=int, default=512, help="spans per export request")
    parser.add_argument("--modes", default="exporters,replay",
                        help="exporters: the SDK's OTLP exporters encode during the run; "
                             "replay: bodies the SDK encoded beforehand, sent by raw clients")
    parser.add_argument("--protocols", default="http,grpc", type=lambda s: s.split(","),
                        help="sender i uses the i-th, round robin")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--detectors", choices=("on", "off"), default="on",
                        help="off: the daemon without drift and toxicity, so without the "
                             "embedding model in memory (the ingest core alone)")
    parser.add_argument("--prefill", type=int, default=0,
                        help="calls already in the store when the daemon starts, as after a "
                             "while in production (random ids over the past day)")
    parser.add_argument("--stages", action="store_true",
                        help="instead: CPU per call of encode, decode, extraction, pickling, "
                             "GenAI metrics and store, each alone in this process")
    parser.add_argument("--commit", type=int, default=4096, help="calls per commit (--stages)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per stage (--stages)")
    args = parser.parse_args()
    if args.stages:
        stages(args)
        return

    print(f"{args.calls:,} chat spans, 300-1,500-char texts; {args.senders} sender processes "
          f"x {args.threads} exporter threads, {args.batch} spans per export; {os.cpu_count()} "
          "cores shared by senders and receiver")
    rows = []
    sink = None if args.skip_baseline else NullSink()
    for mode in args.modes.split(","):
        if sink is not None:
            base = run_senders({"otlp_http": f"127.0.0.1:{sink.http_port}",
                                "otlp_grpc": f"127.0.0.1:{sink.grpc_port}"}, args, mode)
            rows.append((mode, "null sink (the senders' ceiling)", base, None, None))
        with tempfile.TemporaryDirectory() as tmp:
            if args.prefill:
                prefill(Path(tmp) / "bench.db", args.prefill)
            proc, endpoints = start_daemon(
                Path(tmp), None if args.detectors == "on" else DETECTORS_OFF)
            try:
                ours = run_senders(endpoints, args, mode, proc.pid)
                rss = (rss_mb(proc.pid), ours["idle_rss"])
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            db = sqlite3.connect(Path(tmp) / "bench.db")
            stored = db.execute("SELECT COUNT(*) - ?, COUNT(DISTINCT span_id) - ? FROM calls",
                                (args.prefill, args.prefill)).fetchone()
            db.close()
        name = "driftwatch" + ("" if args.detectors == "on" else ", drift and toxicity off")
        rows.append((mode, name, ours, rss, stored))
    print("\n| senders | receiver | calls/s end to end | export p50 | export p99 | failed "
          "| daemon peak RSS | stored (distinct) | CPU µs/call: daemon, senders |"
          "\n|---|---|---|---|---|---|---|---|---|")
    for mode, name, r, rss, stored_counts in rows:
        rss_text = f"{rss[0]:.0f} MB ({rss[1]:.0f} idle)" if rss else "-"
        stored_text = f"{stored_counts[0]:,} ({stored_counts[1]:,})" if stored_counts else "-"
        daemon_cpu = (f"{r['receiver_cpu_us']:.0f} ({r['receiver_main_us']:.0f} in the daemon "
                      f"process, {r['receiver_sys_us']:.0f} in the kernel, "
                      f"{r['receiver_gc_us']:.1f} in its GC pauses)"
                      if rss else "-")
        print(f"| {mode} | {name} | {r['rate']:,.0f} | {r['p50'] * 1000:.0f} ms "
              f"| {r['p99'] * 1000:.0f} ms | {r['failures']} | {rss_text} | {stored_text} "
              f"| {daemon_cpu}, {r['sender_cpu_us']:.0f} |")
    print_target_check(rows, TARGET_CALLS_PER_S)


def print_target_check(rows: list[Any], target: int) -> None:
    """What the run's CPU costs say about `target` calls/s on this machine's cores: senders
    and daemon share them, so a rate above cores / (sender + daemon CPU per call) cannot be
    reached by either side's tuning alone."""
    cores = len(os.sched_getaffinity(0))
    budget = cores / target * 1e6
    print(f"\nTarget {target:,} calls/s on {cores} cores: at most {budget:.0f} µs of CPU per "
          "call, senders and daemon together.")
    for mode, name, r, rss, _ in rows:
        senders = r["sender_cpu_us"]
        if rss is None:
            print(f"- {mode}: the senders alone spend {senders:.0f} µs per call, so they can "
                  f"push at most {cores / senders * 1e6:,.0f} calls/s here to a receiver that "
                  "spends nothing")
        else:
            total = senders + r["receiver_cpu_us"]
            print(f"- {mode} into {name}: {senders:.0f} + {r['receiver_cpu_us']:.0f} = "
                  f"{total:.0f} µs per call, at most {cores / total * 1e6:,.0f} calls/s on "
                  f"{cores} cores ({r['rate']:,.0f} measured)")


if __name__ == "__main__":
    main()
