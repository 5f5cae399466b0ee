"""`driftwatch demo`: a support bot's traffic goes wrong in three ways, and driftwatch says how.

The demo starts a daemon on a temporary store (or uses a running one: `--ops URL` and
`--endpoint URL`) and plays a small banking support bot that exports its chat spans through
the real OpenTelemetry SDK (OTLP/HTTP, GenAI v1.37 attributes). Phase 1 is normal traffic,
backdated into a baseline window; in phase 2 customers ask about a new topic (ATM cash
withdrawals), a share of the bot's answers turn toxic, and one model gets slower. The demo
pins the baseline, runs the drift, toxicity and latency jobs, and prints what fired with its
explanation, then where to look next. Offline: the texts ship in monitor/cli/demo_data
(see its README for sources and licences). Exit codes: 0 all three problems found, 1 a
failure or a problem not found, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from monitor.cli.client import OpsClient, OpsError
from monitor.cli.progress import ProgressBar
from monitor.cli.terminal import printable
from monitor.core.records import Segment, rfc3339
from monitor.jobs.drift.details import DETECTOR as DRIFT
from monitor.jobs.drift.details import DriftDetails
from monitor.jobs.toxicity.details import ToxicityDetails
from monitor.ops.reports import report_path

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DATA = Path(__file__).resolve().parent / "demo_data"
SERVICE = "demo-support-bot"
NEW_TOPIC = "cash_atm"
MODELS = ("gpt-4o-mini", "gpt-4o")
SLOWED_MODEL = "gpt-4o"
SYSTEM_PROMPT = ("You are the support assistant of a retail bank. Answer the customer's "
                 "question briefly and politely; never ask for a full card number or a PIN.")
MINUTE_NS = 60 * 10**9
STARTUP_TIMEOUT_S = 120.0
# The demo's own daemon: jobs run when the demo asks, windows cover a whole phase, and a
# first drift decision is enough to page (production defaults wait for 2 of 3).
DAEMON_CONFIG: dict[str, Any] = {
    "drift": {"interval": "24h", "window": "1h", "permutations": 200,
              "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "24h"},
    "toxicity": {"interval": "24h", "window": "1h"},
    "latency": {"interval": "24h", "window": "1h"},
    "log": {"level": "WARNING"},
}


class DemoError(Exception):
    """The demo cannot go on; the message says what failed."""


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    start_min: float  # minutes before now
    end_min: float
    calls: int
    new_topic: float  # share of prompts about NEW_TOPIC
    toxic: float  # share of completions that are toxic
    slowdown: float  # SLOWED_MODEL's durations multiplied by this


PHASES = (
    Phase("phase 1/2: normal traffic, backdated into a baseline window", 130, 70, 300,
          new_topic=0.0, toxic=0.0, slowdown=1.0),
    Phase("phase 2/2: a new topic, toxic answers and a slower gpt-4o", 45, 1, 300,
          new_topic=0.3, toxic=0.2, slowdown=2.5),
)


@dataclass(frozen=True, slots=True)
class DemoTexts:
    baseline_prompts: tuple[str, ...]  # banking77 train split, every group but NEW_TOPIC
    live_prompts: tuple[str, ...]  # its test split, same groups
    new_topic_prompts: tuple[str, ...]
    answers: tuple[str, ...]
    toxic_answers: tuple[str, ...]

    @classmethod
    def load(cls, directory: Path = DATA) -> DemoTexts:
        def rows(name: str) -> list[dict[str, Any]]:
            with (directory / f"{name}.jsonl").open(encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]

        prompts = rows("prompts")
        usual = [r for r in prompts if r["group"] != NEW_TOPIC]
        return cls(
            baseline_prompts=tuple(r["text"] for r in usual if r["split"] == "train"),
            live_prompts=tuple(r["text"] for r in usual if r["split"] == "test"),
            new_topic_prompts=tuple(r["text"] for r in prompts if r["group"] == NEW_TOPIC),
            answers=tuple(r["text"] for r in rows("completions")),
            toxic_answers=tuple(r["text"] for r in rows("toxic_completions")))


# -- the app ----------------------------------------------------------------------------------


class SupportBot:
    """The demo's app: chat spans as OpenTelemetry's GenAI instrumentation makes them (v1.37,
    content captured), exported by the SDK's BatchSpanProcessor over OTLP/HTTP."""

    def __init__(self, endpoint: str, *, token: str | None = None) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise DemoError("the demo app needs the OpenTelemetry SDK: pip install "
                            "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http") from None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces",
                                    headers=headers, timeout=30)
        self.counter = _counting(exporter)
        self.provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        self.provider.add_span_processor(BatchSpanProcessor(
            self.counter, max_queue_size=10_000, max_export_batch_size=200,
            schedule_delay_millis=100))
        self.tracer = self.provider.get_tracer("driftwatch.demo")

    def chat(self, prompt: str, answer: str | None, *, model: str, start_ns: int,
             duration_s: float, error: str | None, rng: random.Random) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model, "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": 40 + len(prompt) // 4,
            "gen_ai.usage.output_tokens": rng.randint(30, 250),
            "server.address": "api.openai.com",
            "gen_ai.system_instructions": json.dumps(
                [{"type": "text", "content": SYSTEM_PROMPT}]),
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
        }
        if answer is not None:
            attributes["gen_ai.response.finish_reasons"] = ["stop"]
            attributes["gen_ai.output.messages"] = json.dumps([{
                "role": "assistant", "parts": [{"type": "text", "content": answer}],
                "finish_reason": "stop"}])
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT,
                                      attributes=attributes, start_time=start_ns)
        if error:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=start_ns + int(duration_s * 1e9))

    def flush(self) -> None:
        if not self.provider.force_flush(120_000) or self.counter.failed:
            raise DemoError(f"{self.counter.failed} spans could not be exported; see the "
                            "OpenTelemetry exporter's log lines above")

    def shutdown(self) -> None:
        self.provider.shutdown()


def _counting(inner: Any) -> Any:
    """The SDK exporter wrapped to count what it delivered (defined late: the SDK is only
    imported when the demo runs)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        def __init__(self) -> None:
            self.exported = 0
            self.failed = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            result: SpanExportResult = inner.export(spans)
            if result is SpanExportResult.SUCCESS:
                self.exported += len(spans)
            else:
                self.failed += len(spans)
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return CountingExporter()


def play(bot: SupportBot, phase: Phase, texts: DemoTexts, *, now_ns: int,
         rng: random.Random, err: TextIO) -> int:
    """Send one phase's calls, spread evenly over its window; the number sent."""
    start = now_ns - int(phase.start_min * MINUTE_NS)
    step = (phase.start_min - phase.end_min) * MINUTE_NS / phase.calls
    usual = texts.baseline_prompts if phase.new_topic == 0 else texts.live_prompts
    bar = ProgressBar(phase.calls, err)
    for i in range(phase.calls):
        model = MODELS[i % 2]
        prompt = rng.choice(texts.new_topic_prompts if rng.random() < phase.new_topic
                            else usual)
        error = "rate_limit_exceeded" if rng.random() < 0.01 else None
        toxic = rng.random() < phase.toxic
        answer = None if error else rng.choice(texts.toxic_answers if toxic else texts.answers)
        typical = 0.7 if model == "gpt-4o-mini" else 1.3
        duration = typical * rng.lognormvariate(0, 0.3) * (
            phase.slowdown if model == SLOWED_MODEL else 1)
        bot.chat(prompt, answer, model=model, start_ns=start + int(i * step),
                 duration_s=duration, error=error, rng=rng)
        bar.update(i + 1, f"{phase.name}: {i + 1} calls sent")
    bot.flush()
    bar.close(phase.calls, f"{phase.name}: {phase.calls} calls sent")
    return phase.calls


# -- the daemon -------------------------------------------------------------------------------


@dataclass
class Target:
    ops: str  # ops API URL
    endpoint: str  # OTLP/HTTP URL
    store: Path | None = None  # when the demo runs the daemon itself
    log: Path | None = None


@contextmanager
def own_daemon(directory: Path, out: TextIO) -> Iterator[Target]:
    """A `driftwatch run` on a fresh store in `directory`, on free loopback ports."""
    config = {"receivers": {"otlp_grpc": {"endpoint": "127.0.0.1:0"},
                            "otlp_http": {"endpoint": "127.0.0.1:0"}},
              "ops": {"endpoint": "127.0.0.1:0"},
              "store": {"path": str(directory / "driftwatch.db")}, **DAEMON_CONFIG}
    config_path = directory / "driftwatch.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = directory / "driftwatch.log"
    print("starting a daemon on a temporary store (loading the embedding model takes "
          "a few seconds)...", file=out, flush=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "--config", str(config_path)],
            stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        endpoints = _banner(process, log_path)
        yield Target(ops=f"http://{endpoints['ops'].removeprefix('http://')}",
                     endpoint=f"http://{endpoints['otlp_http']}",
                     store=directory / "driftwatch.db", log=log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


def _banner(process: subprocess.Popen[str], log_path: Path) -> dict[str, str]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT_S)
    line = process.stdout.readline() if ready else ""
    if "listening:" not in line:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise DemoError(f"the daemon did not start (its log, {log_path}):\n{tail}")
    return dict(part.split("=", 1) for part in line.split("listening:", 1)[1].split())


# -- detection and its explanation ------------------------------------------------------------


def detect(client: OpsClient, *, phase1_ns: tuple[int, int], out: TextIO) -> list[dict[str, Any]]:
    """Pin the baseline, run the jobs, and return the service's latest results."""
    client.post("/api/v1/baselines", {"service": SERVICE, "model": None,
                                      "from": rfc3339(phase1_ns[0]), "to": rfc3339(phase1_ns[1])})
    print(f"baseline pinned for {SERVICE}: phase 1's window", file=out)
    for job in ("latency", "toxicity", "drift"):
        for attempt in range(3):  # a daemon with hysteresis needs k drift decisions
            began = time.monotonic()
            print(f"running the {job} job{' again (hysteresis)' if attempt else ''}...",
                  end=" ", file=out, flush=True)
            results = [r for r in client.post(f"/api/v1/jobs/{job}/run")["result"]
                       if r.get("service") == SERVICE]
            print(f"{len(results)} results in {time.monotonic() - began:.1f}s", file=out)
            if not any(DriftDetails.from_json(r["details"]).decision and not r["anomalous"]
                       for r in results if r["detector"] == DRIFT):
                break
    # Evaluate the alert rules now, not at the next minute; the latency rule holds for two
    # results in a row, so latency runs once more in between.
    try:
        for job in ("alerts", "latency", "alerts"):
            client.post(f"/api/v1/jobs/{job}/run")
    except OpsError as exc:
        if " 404:" not in str(exc):
            raise
    latest: list[dict[str, Any]] = client.get("/api/v1/results", service=SERVICE)["results"]
    return latest


def explain(results: list[dict[str, Any]], ops: str, out: TextIO) -> list[str]:
    """Print what fired, one block per detector and direction, with explanations; return the
    report URLs printed."""
    urls = []
    fired = [r for r in results if r["anomalous"]]
    print(f"\nWhat fired ({len(fired)} of {len(results)} detector results are anomalous)",
          file=out)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted(fired, key=lambda r: r["model"] or ""):  # the whole service first
        groups.setdefault((r["detector"], r["direction"] or ""), []).append(r)
    for (detector, direction), found in sorted(groups.items(), key=_by_story):
        head = found[0]
        what = f"{direction} {detector}" if detector == "drift" else detector
        print(f"\n  {what.upper()} in {_segment(head)}", file=out)
        if (detector, direction) == ("drift", "completion"):
            # its clusters and keywords quote the toxic answers: they stay on the page
            print("    the answers changed: a cluster of new, unlike answers appeared "
                  "(the report page shows it; content warning: offensive language)", file=out)
        else:
            for r in found if detector == "latency" else [head]:
                print(f"    {printable(r['summary'])}", file=out)
        if (detector, direction) == ("drift", "prompt"):
            _clusters(head, out)
        if detector == "toxicity":
            toxic = ToxicityDetails.from_json(head["details"]).toxic_count
            print(f"    {toxic} toxic answers; the most toxic are "
                  "on the report page (content warning: offensive language)", file=out)
        others = [r["model"] for r in found[1:] if r["model"]]
        if others and detector != "latency":
            print(f"    also anomalous per model: {printable(', '.join(others))}", file=out)
        if detector in ("drift", "toxicity") and (path := report_path(head)):
            urls.append(f"{ops}{path}")
            print(f"    report: {urls[-1]}", file=out)
    quiet = sorted({f"{r['detector']} of " + (f"{r['direction']}s of " if r["direction"]
                                              else "") + _segment(r)
                    for r in results if r["anomalous"] is False})
    if quiet:
        print(f"\nQuiet, as expected where nothing changed: {'; '.join(quiet)}", file=out)
    return urls


def _by_story(item: tuple[tuple[str, str], list[dict[str, Any]]]) -> int:
    order = [("drift", "prompt"), ("toxicity", "completion"), ("latency", ""),
             ("drift", "completion")]
    return order.index(item[0]) if item[0] in order else len(order)


def _segment(result: dict[str, Any]) -> str:
    return printable(Segment(service=result["service"], model=result["model"]).title)


def _clusters(result: dict[str, Any], out: TextIO) -> None:
    grown = [c for c in DriftDetails.from_json(result["details"]).clusters
             if c.share_current > c.share_reference]
    for cluster in grown[:2]:
        words = printable(", ".join(cluster.keywords)) or "(no keywords)"
        print(f"    a topic grew from {cluster.share_reference:.0%} to "
              f"{cluster.share_current:.0%} of prompts: {words}", file=out)
        for example in cluster.examples[:3]:
            print(f"      e.g. \"{_cut(printable(example), 100)}\"", file=out)


def alerts(client: OpsClient, out: TextIO) -> None:
    """The alerts the daemon raised, where it has an alerts API."""
    try:
        found = client.get("/api/v1/alerts")
    except OpsError as exc:
        if " 404:" in str(exc):
            return
        raise
    items = found.get("alerts", []) if isinstance(found, dict) else found
    print(f"\nAlerts ({len(items)})", file=out)
    for alert in items:
        annotations = alert.get("annotations") or {}
        labels = alert.get("labels") or {}
        name = alert.get("alertname") or labels.get("alertname", "?")
        summary = annotations.get("summary") or annotations.get("description", "")
        print(f"  {printable(str(alert.get('state', '?'))):<9} {printable(str(name))}: "
              f"{printable(summary)}", file=out)
        for line in (annotations.get("explanation") or "").splitlines()[:3]:
            print(f"            {_cut(printable(line), 110)}", file=out)
        if annotations.get("report_url"):
            print(f"            report: {printable(annotations['report_url'])}", file=out)


def next_steps(target: Target, urls: list[str], out: TextIO) -> None:
    print("\nWhere to look next", file=out)
    for url in urls:
        print(f"  {url}", file=out)
    print(f"  {target.ops}/metrics   Prometheus metrics (driftwatch_*)", file=out)
    print(f"  driftwatch status --ops {target.ops}   the latest result of every detector",
          file=out)
    if target.store is not None:
        print(f"  driftwatch calls --store {target.store} --since 3h   the demo's calls",
              file=out)
    print("  driftwatch dashboards export DIR   Grafana dashboards to import", file=out)
    if target.log is not None:
        print(f"  {target.log}   the daemon's log", file=out)


def _missing(results: list[dict[str, Any]]) -> list[str]:
    """The demo's three problems that no result flagged."""
    wanted = {"prompt drift": ("drift", "prompt", None),
              "toxic completions": ("toxicity", "completion", None),
              f"{SLOWED_MODEL} latency": ("latency", None, SLOWED_MODEL)}
    return [name for name, (detector, direction, model) in wanted.items()
            if not any(r["anomalous"] and r["detector"] == detector
                       and r["direction"] == direction and r["model"] == model
                       for r in results)]


def _cut(text: str, width: int) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= width else text[: width - 1] + "…"


# -- the command ------------------------------------------------------------------------------


def add_demo_command(subparsers: Any) -> argparse.ArgumentParser:
    """Add `demo` to the `driftwatch` CLI's subparsers; its handler returns an exit code."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="watch a demo support bot drift, turn toxic and slow down",
        description="Start a daemon on a temporary store (or use a running one with --ops "
        "and --endpoint), play a support bot's traffic through the OpenTelemetry SDK, then "
        "show what driftwatch found and where to look. Offline; about a minute.")
    parser.add_argument("--ops", help="ops API URL of a running daemon (with --endpoint)")
    parser.add_argument("--endpoint", help="OTLP/HTTP URL of that daemon, e.g. "
                        "http://127.0.0.1:4318")
    parser.add_argument("--token", help="bearer token of that daemon's ops API and receiver")
    parser.add_argument("--exit", action="store_true",
                        help="stop the demo's daemon right after the summary instead of "
                        "serving the report pages until Ctrl-C")
    parser.add_argument("--seed", type=int, default=7, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_demo)
    return parser


def run_demo(args: argparse.Namespace) -> int:
    if bool(args.ops) != bool(args.endpoint):
        print("driftwatch: demo: --ops and --endpoint go together (a running daemon's ops "
              "API and OTLP/HTTP receiver)", file=sys.stderr)
        return EXIT_USAGE
    out = sys.stdout
    try:
        if args.ops:
            target = Target(ops=args.ops.rstrip("/"), endpoint=args.endpoint.rstrip("/"))
            return _demo(target, args, out, wait=False)
        directory = Path(tempfile.mkdtemp(prefix="driftwatch-demo-"))
        try:
            with own_daemon(directory, out) as target:
                return _demo(target, args, out, wait=not args.exit)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    except (DemoError, OpsError) as exc:
        print(f"driftwatch: demo: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("\ndemo stopped", file=out)
        return EXIT_OK


def _demo(target: Target, args: argparse.Namespace, out: TextIO, *, wait: bool) -> int:
    began = time.monotonic()
    print(f"daemon: ops {target.ops}, OTLP/HTTP {target.endpoint}", file=out)
    if target.store is not None:
        print(f"store: {target.store}", file=out)
    client = OpsClient(target.ops, token=args.token)
    client.get("/api/v1/results", service=SERVICE)  # reachable, and our token works
    texts = DemoTexts.load()
    rng = random.Random(args.seed)
    bot = SupportBot(target.endpoint, token=args.token)
    now = time.time_ns()
    try:
        for phase in PHASES:
            print(f"{phase.name}", file=out, flush=True)
            sent = play(bot, phase, texts, now_ns=now, rng=rng, err=sys.stderr)
            print(f"  {sent} calls sent to {SERVICE} ({phase.start_min:g} to "
                  f"{phase.end_min:g} minutes ago)", file=out, flush=True)
    finally:
        bot.shutdown()
    first = PHASES[0]
    window = (now - int((first.start_min + 1) * MINUTE_NS),
              now - int((first.end_min - 1) * MINUTE_NS))
    results = detect(client, phase1_ns=window, out=out)
    urls = explain(results, target.ops, out)
    alerts(client, out)
    next_steps(target, urls, out)
    missing = _missing(results)
    print(f"\ndemo finished in {time.monotonic() - began:.0f}s", file=out)
    if missing:
        print(f"driftwatch: demo: expected these to fire, but they did not: "
              f"{', '.join(missing)}", file=sys.stderr)
    code = EXIT_FAILURE if missing else EXIT_OK
    if wait:
        print("The daemon keeps running so you can open the pages above; press Ctrl-C to "
              "stop it and delete its temporary store.", file=out, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nstopping the daemon", file=out)
    return code


def main(argv: list[str] | None = None) -> int:
    """`python -m monitor.cli.demo ...`, the same as `driftwatch demo ...`."""
    parser = argparse.ArgumentParser(prog="driftwatch")
    add_demo_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
