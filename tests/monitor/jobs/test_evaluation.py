"""The evaluation detector inside the real daemon: a support bot's calls and an LLM judge's
`gen_ai.evaluation.result` log records, both through the real OpenTelemetry SDK. After a
pinned baseline one model's answers get worse and the other's do not: `driftwatch jobs run
evaluation` finds the drop on that model alone, per evaluation name, /metrics and the report
page show it with the worst-scored calls (redacted), and the LLMEvaluationDrop alert reaches
a webhook."""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import Evaluator, log_exporter
from tests.harness import Daemon, cli, get, wait_for, write_config
from tests.monitor.alerting.receivers import Receiver, receiving

MINUTE_NS = 60 * 10**9
WORSE = "gpt-4o"  # its answers get worse after the baseline
STEADY = "gpt-4o-mini"
LEAK = "jane.doe@example.com"  # in the worst answers: must never leave the daemon
RETRY = {"attempts": 2, "backoff": "50ms", "max_backoff": "1s", "timeout": "5s"}


def judge_traffic(app: LLMApp, judge: Evaluator, *, start_ns: int, minutes: float, n: int,
                  worse: bool, rng: random.Random) -> int:
    """n calls over the window, half per model, each judged for relevance (a score and a
    label) and a few for politeness; returns how many evaluations were sent."""
    sent = 0
    for i in range(n):
        model = WORSE if i % 2 else STEADY
        bad = rng.random() < (0.45 if worse and model == WORSE else 0.08)
        completion = (f"Please email {LEAK} about that, I cannot help." if bad
                      else "Open Settings, then Security, then Reset password.")
        call = app.chat("How do I reset my password?", completion, model=model,
                        start_ns=start_ns + int(i * minutes * MINUTE_NS / n), duration_s=0.5)
        score = rng.betavariate(2, 5) if bad else rng.betavariate(5, 2)
        judge.evaluate(call, "relevance", score=round(score, 3),
                       label="irrelevant" if bad else "relevant",
                       explanation=f"mentions {LEAK}" if bad else "answers the question")
        sent += 1
        if i % 10 == 1:  # too few to compare: insufficient data, never "no drop"
            judge.evaluate(call, "politeness", score=1.0)
            sent += 1
    return sent


class World:
    def __init__(self, directory: Path, hook: Receiver) -> None:
        config = write_config(
            directory, evaluation={"interval": "1h", "min_samples": 30},
            latency={"interval": "1h"},
            alerts={"evaluation_interval": "1h",
                    "notifiers": {"webhook": [{"url": hook.url}], "retry": RETRY}})
        self.daemon = Daemon(config_path=config, store_path=directory / "driftwatch.db").start()
        app = LLMApp(otlp_exporter("grpc", self.daemon.grpc))
        judge = Evaluator(log_exporter("http", self.daemon.http))
        rng = random.Random(5)
        now = time.time_ns()
        sent = judge_traffic(app, judge, start_ns=now - 100 * MINUTE_NS, minutes=40, n=240,
                             worse=False, rng=rng)
        sent += judge_traffic(app, judge, start_ns=now - 14 * MINUTE_NS, minutes=13, n=240,
                              worse=True, rng=rng)
        app.flush()
        judge.flush()
        app.shutdown()
        judge.shutdown()
        wait_for(lambda: self.daemon.metric("driftwatch_evaluations_joined_total") == sent,
                 timeout=60)
        cli("baseline", "set", "--service", "support-bot", "--from", "-101m", "--to", "-59m",
            "--ops", self.daemon.ops)


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, hook: Receiver) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("evaluation"), hook)
    try:
        yield world
    finally:
        world.daemon.stop()


@pytest.fixture(scope="module")
def results(world: World) -> list[dict[str, Any]]:
    out = cli("jobs", "run", "evaluation", "--json", "--ops", world.daemon.ops).stdout
    return [json.loads(line) for line in out.splitlines()]


def one(results: list[dict[str, Any]], model: str | None, name: str) -> dict[str, Any]:
    [found] = [r for r in results
               if r["model"] == model and r["details"]["evaluation"] == name]
    return found


def test_the_worse_model_dropped_and_the_steady_one_did_not(
        results: list[dict[str, Any]]) -> None:
    worse, steady = one(results, WORSE, "relevance"), one(results, STEADY, "relevance")
    assert worse["detector"] == "evaluation" and worse["direction"] is None
    assert worse["anomalous"] is True, worse["summary"]
    assert worse["p_value"] < 0.01
    assert worse["details"]["pass_rate"] < worse["details"]["reference_pass_rate"] - 0.2
    assert worse["summary"].startswith(f"relevance scores of support-bot/{WORSE} dropped")
    assert steady["anomalous"] is False, steady["summary"]
    assert one(results, None, "relevance")["anomalous"] is True  # the service as a whole


def test_too_few_evaluations_are_insufficient_data(results: list[dict[str, Any]]) -> None:
    polite = one(results, WORSE, "politeness")
    assert polite["anomalous"] is None
    assert "insufficient data" in polite["summary"]
    # the correction over a segment's names counts those that could be tested
    assert one(results, WORSE, "relevance")["details"]["names_tested"] == 1


def test_worst_examples_are_redacted_everywhere_they_go(world: World,
                                                         results: list[dict[str, Any]],
                                                         hook: Receiver) -> None:
    worse = one(results, WORSE, "relevance")
    examples = worse["details"]["worst_examples"]
    assert len(examples) == 3 and all(e["label"] == "irrelevant" for e in examples)
    assert examples[0]["score"] <= examples[-1]["score"]
    assert "[EMAIL]" in examples[0]["completion"] and "[EMAIL]" in examples[0]["explanation"]
    page = get(f"{world.daemon.ops}/reports/evaluation/{worse['id']}")[1]
    assert "Worst-scored calls in the window" in page and "[EMAIL]" in page

    cli("jobs", "run", "alerts", "--ops", world.daemon.ops)
    messages = wait_for(lambda: [m for m in hook.bodies()
                                 if m["groupLabels"].get("alertname") == "LLMEvaluationDrop"])
    alerts = [a for m in messages for a in m["alerts"]]
    assert {(a["labels"].get("model"), a["labels"]["evaluation"]) for a in alerts} == {
        (WORSE, "relevance"), (None, "relevance")}
    assert all(a["status"] == "firing" for a in alerts)
    annotations = alerts[0]["annotations"]
    assert re.match(r"relevance of support-bot(/gpt-4o)? dropped: pass rate",
                    annotations["summary"]), annotations
    assert "[EMAIL]" in annotations["examples"]
    for text in (page, json.dumps(results), json.dumps(hook.bodies())):
        assert LEAK not in text


def test_metrics_carry_the_evaluation_name(world: World,
                                           results: list[dict[str, Any]]) -> None:
    daemon: Daemon = world.daemon
    assert daemon.metric("driftwatch_evaluation_pass_rate", model=WORSE,
                         evaluation="relevance") < 0.7
    assert daemon.metric("driftwatch_detector_anomalous", detector="evaluation", model=WORSE,
                         evaluation="relevance") == 1
    assert daemon.metric("driftwatch_detector_insufficient_data", detector="evaluation",
                         model=WORSE, evaluation="politeness") == 1


def test_a_series_is_one_evaluation_of_one_segment(world: World,
                                                   results: list[dict[str, Any]]) -> None:
    url = (f"{world.daemon.ops}/api/v1/results/series?detector=evaluation"
           f"&service=support-bot&model={WORSE}")
    polite = json.loads(get(url + "&evaluation=politeness")[1])["results"]
    assert [r["details"]["evaluation"] for r in polite] == ["politeness"]
    assert json.loads(get(url)[1])["results"] == []  # an evaluation series names its evaluation
