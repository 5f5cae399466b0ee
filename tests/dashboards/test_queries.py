"""Every query of every dashboard, run against a real Prometheus scraping a real daemon.

A support bot's traffic (real texts, exported through the OpenTelemetry SDK) shifts after
a pinned baseline, and an LLM judge scores every call's relevance (worse after the shift);
the drift, toxicity, latency, self-check and evaluation jobs run; Prometheus 2.42
scrapes the ops endpoint every second and evaluates one alert rule, so ALERTS exists.
Then every query, with the variables filled in as Grafana would, must parse; every panel
and variable query must return at least one series (an annotation may be empty: nothing
firing), and every metric a query reads must exist.

Metrics the daemon does not export yet are listed in EXPECTED_MISSING, with the reason;
a query may come back empty only because of one of them, and the list fails the test as
soon as one of them appears, so it only ever shrinks.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from dashboards.export import dashboard_files
from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import Evaluator, log_exporter
from tests.harness import Daemon, cli, get, request, wait_for, write_config
from tests.texts import rows

pytestmark = pytest.mark.slow

EXPECTED_MISSING = {
    "driftwatch_notifications_total": "exported per configured notifier; this daemon has "
                                      "none configured",
}
SERVICE, PROVIDER = "support-bot", "openai"
MODELS = ("gpt-4o-mini", "gpt-4o")
MINUTE_NS = 60 * 10**9
NEW_TOPIC = "card_payments_refunds"
DETECTORS: dict[str, Any] = {
    "drift": {"enabled": True, "interval": "1h", "permutations": 200, "min_samples": 30,
              "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "6h"},
    "toxicity": {"enabled": True, "interval": "1h", "window": "1h", "min_samples": 30},
    "latency": {"interval": "1h", "window": "1h", "min_samples": 30},
    "evaluation": {"interval": "1h", "window": "1h", "min_samples": 30},
    "cost": {"interval": "1h", "window": "1h", "min_samples": 30,
             "reference": {"mode": "baseline"}, "budgets": {SERVICE: {"daily_usd": 1.0}}},
}
METRIC = re.compile(r"\b((?:driftwatch|gen_ai|process)_[a-z0-9_]+|ALERTS)\b(?!\s*[=!])")
GROUPING = re.compile(r"\b(?:by|without)\s*\([^)]*\)")
LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$")
GRAFANA = {"__rate_interval": "1m", "__range": "1h", "__interval": "15s"}
RULES = {"groups": [{"name": "dashboards-test", "interval": "1s", "rules": [{
    "alert": "DriftwatchSegmentAnomalous", "expr": "driftwatch_detector_anomalous == 1",
    "labels": {"severity": "ticket"},
    "annotations": {"summary": "{{ $labels.detector }} on {{ $labels.service }}"}}]}]}


class Streaming(SpanProcessor):
    """Stamps each chat span with a time to first token, as streaming instrumentation does."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if span.name.startswith("chat"):
            span.set_attribute("gen_ai.response.time_to_first_chunk",
                               self._rng.uniform(0.05, 0.6))

    def on_end(self, span: ReadableSpan) -> None:
        pass


def send(app: LLMApp, rng: random.Random, *, start_ns: int, minutes: float, n: int,
         shifted: bool, judge: Evaluator | None = None) -> None:
    """n calls over the window, alternating models, each judged when a judge is given;
    once shifted, prompts from a new topic, toxic completions, a slower gpt-4o, rate-limit
    errors and worse relevance scores appear."""
    prompts = rows("banking77")
    usual = [r["text"] for r in prompts if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in prompts if r["group"] == NEW_TOPIC]
    benign = [r["text"][:400] for r in rows("arena_hard_responses")]
    toxic = [r["text"] for r in rows("toxicity") if r["toxic"]]
    for i in range(n):
        model = MODELS[i % 2]
        prompt = rng.choice(novel if shifted and rng.random() < 0.3 else usual)
        completion = rng.choice(toxic if shifted and rng.random() < 0.15 else benign)
        slow = 2.0 if shifted and model == "gpt-4o" else 1.0
        call = app.chat(prompt, completion, model=model, provider=PROVIDER,
                        error="rate_limit_exceeded" if shifted and i % 7 == 3 else None,
                        start_ns=start_ns + int(i * minutes * MINUTE_NS / n),
                        duration_s=rng.lognormvariate(0, 0.25) * slow)
        if judge is not None:
            judge.evaluate(call, "relevance", score=rng.betavariate(3 if shifted else 5, 2))


def malformed_span(daemon: Daemon) -> None:
    """One span with an 8-byte trace id: refused as malformed, the rest of ingest goes on."""
    span = trace_pb2.Span(trace_id=b"\x01" * 8, span_id=b"\x02" * 8, name="chat",
                          start_time_unix_nano=time.time_ns(),
                          end_time_unix_nano=time.time_ns())
    body = ExportTraceServiceRequest(resource_spans=[trace_pb2.ResourceSpans(
        scope_spans=[trace_pb2.ScopeSpans(spans=[span])])])
    status, _ = request("POST", daemon.http + "/v1/traces", body.SerializeToString(),
                        {"Content-Type": "application/x-protobuf"})
    assert status in (200, 400), status


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]

    def query(self, expr: str) -> list[dict[str, Any]]:
        status, text = get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}))
        answer = json.loads(text)
        assert status == 200 and answer["status"] == "success", f"{expr}\n{text}"
        return list(answer["data"]["result"])

    def label_values(self, label: str, match: str) -> list[str]:
        status, text = get(f"{self.url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": match}))
        assert status == 200, f"{match}\n{text}"
        return list(json.loads(text)["data"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus is not installed (apt-get install -y prometheus)")
        pytest.skip("prometheus is not installed (apt-get install -y prometheus)")
    return binary


def start_prometheus(binary: str, directory: Path, target: str) -> Prometheus:
    (directory / "rules.yml").write_text(yaml.safe_dump(RULES))
    (directory / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(directory / "rules.yml")],
        "scrape_configs": [{"job_name": "driftwatch",
                            "static_configs": [{"targets": [target]}]}]}))
    address = f"127.0.0.1:{free_port()}"
    with (directory / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={directory / 'tsdb'}", f"--web.listen-address={address}"],
            stdout=log, stderr=subprocess.STDOUT)
    prometheus = Prometheus(f"http://{address}", process)

    def ready() -> bool:
        assert process.poll() is None, (directory / "prometheus.log").read_text()
        try:
            return get(prometheus.url + "/-/ready")[0] == 200
        except OSError:
            return False

    wait_for(ready, timeout=30)
    return prometheus


@dataclass
class World:
    daemon: Daemon
    prometheus: Prometheus
    instance: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    binary = prometheus_binary()
    directory = tmp_path_factory.mktemp("dashboards")
    daemon = Daemon(config_path=write_config(directory, **DETECTORS),
                    store_path=directory / "driftwatch.db").start()
    rng = random.Random(11)
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service=SERVICE)
    app.provider.add_span_processor(Streaming(rng))
    judge = Evaluator(log_exporter("http", daemon.http), service=SERVICE)
    prometheus = None
    try:
        now = time.time_ns()
        send(app, rng, start_ns=now - 100 * MINUTE_NS, minutes=40, n=140, shifted=False,
             judge=judge)
        send(app, rng, start_ns=now - 50 * MINUTE_NS, minutes=45, n=140, shifted=True,
             judge=judge)
        app.http_span()
        app.flush()
        judge.flush()
        cli("baseline", "set", "--service", SERVICE, "--from", "-101m", "--to", "-59m",
            "--ops", daemon.ops)
        malformed_span(daemon)
        instance = urllib.parse.urlsplit(daemon.ops).netloc
        prometheus = start_prometheus(binary, directory, instance)
        wait_for(lambda: daemon.metric("driftwatch_evaluations_joined_total") == 280)
        for job in ("latency", "drift", "toxicity", "self_check", "evaluation", "cost"):
            cli("jobs", "run", job, "--ops", daemon.ops, timeout=300)
        # Live traffic while Prometheus watches, so rates and quantiles have values.
        send(app, rng, start_ns=time.time_ns() - 20 * 10**9, minutes=0.3, n=40, shifted=True)
        app.flush()
        assert app.exporter.failures == 0
        stored = daemon.metric("driftwatch_llm_calls_stored_total")
        wait_for(lambda: any(float(s["value"][1]) == stored for s in prometheus.query(
            "driftwatch_llm_calls_stored_total")) and prometheus.query("ALERTS"), timeout=30)
        time.sleep(2)  # a couple more scrapes, so every rate window holds the change
        yield World(daemon, prometheus, instance)
    finally:
        app.shutdown()
        judge.shutdown()
        if prometheus is not None:
            prometheus.process.terminate()
            prometheus.process.wait(timeout=30)
        daemon.stop()


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str
    expr: str
    events: bool = False  # an annotation: nothing firing is no series, and that is right


def queries() -> list[Query]:
    found = []
    for name, text in dashboard_files().items():
        board = json.loads(text)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append(Query(name, f"{panel['title']} / {target['refId']}",
                                   target["expr"]))
        for annotation in board["annotations"]["list"]:
            if "expr" in annotation:
                found.append(Query(name, f"annotation {annotation['name']}",
                                   annotation["expr"], events=True))
    return found


def variable_queries() -> list[Query]:
    return [Query(name, f"variable {v['name']}", v["query"])
            for name, text in dashboard_files().items()
            for v in json.loads(text)["templating"]["list"] if v["type"] == "query"]


def values(world: World, everything: bool) -> dict[str, str]:
    """The variables as Grafana fills them in: one real value each, or All (.*)."""
    if everything:
        return {**GRAFANA, **dict.fromkeys(
            ("service", "provider", "model", "direction", "instance"), ".*")}
    chosen = {"service": SERVICE, "provider": PROVIDER, "model": MODELS[0],
              "direction": "completion", "instance": world.instance}
    return {**GRAFANA, **{k: regex_escape(v) for k, v in chosen.items()}}


def regex_escape(value: str) -> str:
    """As Grafana's Prometheus data source escapes a value inside =~"...": a doubled
    backslash, since the PromQL string unescapes one."""
    return re.sub(r"[\\^$*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def fill(expr: str, variables: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return variables[match.group(1) or match.group(2)]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def metrics(expr: str) -> set[str]:
    """The metric names an expression reads (not the label names it groups by)."""
    match = LABEL_VALUES.match(expr)
    return set(METRIC.findall(GROUPING.sub("", match.group(1) if match else expr)))


def missing(expr: str) -> set[str]:
    return metrics(expr) & set(EXPECTED_MISSING)


@pytest.mark.parametrize("everything", [False, True], ids=["one-value", "all"])
def test_every_query_parses_and_every_panel_query_returns_series(world: World,
                                                                 everything: bool) -> None:
    empty = []
    for q in queries():
        result = world.prometheus.query(fill(q.expr, values(world, everything)))
        if not result and not q.events and not missing(q.expr):
            empty.append(f"{q.dashboard}: {q.where}: {q.expr}")
    assert not empty, "queries with no series:\n" + "\n".join(empty)


def test_every_variable_query_lists_the_real_values(world: World) -> None:
    wanted = {"service": SERVICE, "provider": PROVIDER, "model": MODELS[0],
              "direction": "completion", "instance": world.instance}
    for q in variable_queries():
        match = LABEL_VALUES.match(q.expr)
        assert match, f"{q.dashboard}: {q.where}: not label_values(metric, label)"
        selector, label = match.groups()
        name = q.where.removeprefix("variable ")
        found = world.prometheus.label_values(label, fill(selector, values(world, False)))
        assert wanted[name] in found, f"{q.dashboard}: {q.where}: {found}"


def test_every_metric_the_dashboards_read_is_exported(world: World) -> None:
    names = {m for q in [*queries(), *variable_queries()] for m in metrics(q.expr)}
    present = {n for n in names if world.prometheus.query(f'count({{__name__="{n}"}})')}
    assert names - present - set(EXPECTED_MISSING) == set(), "read but never exported"
    assert present & set(EXPECTED_MISSING) == set(), (
        "exported now: remove these from EXPECTED_MISSING")
