"""The detectors inside the real daemon: a support bot's traffic, exported through the real
OpenTelemetry SDK, shifts after a pinned baseline; `driftwatch jobs run` finds the drift,
the toxicity and the latency regression, `status` and /metrics show them, and the history
survives a restart. Texts are real (corpora/). The daemon runs as on an install without
PyTorch, sentence-transformers or transformers (as `make run` and the image install it):
the default model runs on numpy."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import (
    TORCH_PACKAGES,
    Daemon,
    cli,
    get,
    request,
    without_packages,
    write_config,
)
from tests.texts import rows

pytestmark = pytest.mark.slow

MINUTE_NS = 60 * 10**9
NEW_TOPIC = "card_payments_refunds"  # a banking77 group absent from the baseline
SLOWED_MODEL = "gpt-4o"

DETECTORS: dict[str, Any] = {
    "drift": {"enabled": True, "interval": "1h", "permutations": 200, "min_samples": 30,
              "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "1h"},
    "toxicity": {"enabled": True, "interval": "1h", "min_samples": 30},
    "latency": {"interval": "1h", "min_samples": 30},
}


def completions() -> tuple[list[str], list[str]]:
    """Benign model answers and toxic texts (davidson, convabuse), both real."""
    benign = [r["text"][:400] for r in rows("arena_hard_responses")]
    toxic = [r["text"] for r in rows("toxicity")
             if r["toxic"] and r["dataset"] in ("davidson_hate_offensive", "convabuse")]
    return benign, toxic


def send_traffic(app: LLMApp, *, start_ns: int, minutes: float, n: int, new_topic: float,
                 toxic: float, slow_factor: float, rng: random.Random) -> None:
    """n calls spread over the window; a share of prompts from the new topic, a share of
    completions toxic, and the slowed model's durations multiplied."""
    prompts = rows("banking77")
    usual = [r["text"] for r in prompts if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in prompts if r["group"] == NEW_TOPIC]
    benign, toxic_texts = completions()
    for i in range(n):
        model = SLOWED_MODEL if i % 2 else "gpt-4o-mini"
        prompt = rng.choice(novel if rng.random() < new_topic else usual)
        completion = rng.choice(toxic_texts if rng.random() < toxic else benign)
        duration = rng.lognormvariate(0, 0.25) * (slow_factor if model == SLOWED_MODEL else 1)
        app.chat(prompt, completion, model=model,
                 start_ns=start_ns + int(i * minutes * MINUTE_NS / n), duration_s=duration)


class World:
    """One daemon on one store, restartable."""

    def __init__(self, directory: Path) -> None:
        self._config = write_config(directory, **DETECTORS)
        self._store = directory / "driftwatch.db"
        self._env = without_packages(directory / "no-torch", *TORCH_PACKAGES)
        self.daemon = self._start()

    def _start(self) -> Daemon:
        return Daemon(config_path=self._config, store_path=self._store, env=self._env).start()

    def restart(self) -> Daemon:
        self.daemon.stop()
        self.daemon = self._start()
        return self.daemon


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A daemon whose support-bot traffic shifted after a pinned baseline."""
    world = World(tmp_path_factory.mktemp("detection"))
    try:
        feed(world.daemon)
        yield world
    finally:
        if world.daemon.alive():
            world.daemon.stop()


def feed(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    rng = random.Random(7)
    now = time.time_ns()
    send_traffic(app, start_ns=now - 100 * MINUTE_NS, minutes=40, n=300, new_topic=0.0,
                 toxic=0.0, slow_factor=1.0, rng=rng)
    send_traffic(app, start_ns=now - 50 * MINUTE_NS, minutes=48, n=300, new_topic=0.3,
                 toxic=0.15, slow_factor=2.0, rng=rng)
    app.flush()
    app.shutdown()
    assert app.exporter.failures == 0
    cli("baseline", "set", "--service", "support-bot", "--from", "-101m", "--to", "-59m",
        "--ops", daemon.ops)


def run_job(daemon: Daemon, name: str) -> list[dict[str, Any]]:
    out = cli("jobs", "run", name, "--json", "--ops", daemon.ops, timeout=300).stdout
    return [json.loads(line) for line in out.splitlines()]


def one(results: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in results if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, f"expected one result matching {match}, got {found}"
    return found[0]


@pytest.fixture
def daemon(world: World) -> Daemon:
    return world.daemon


def test_a_new_topic_in_prompts_is_drift_explained_by_its_texts(daemon: Daemon) -> None:
    results = run_job(daemon, "drift")
    prompts = one(results, service="support-bot", model=None, direction="prompt")
    assert prompts["anomalous"] is True, prompts["summary"]
    assert prompts["n_reference"] >= 30 and prompts["n_current"] >= 30
    assert prompts["p_value"] < 0.01
    grown = prompts["details"]["clusters"][0]
    assert grown["share_current"] > grown["share_reference"]
    novel = {r["text"] for r in rows("banking77") if r["group"] == NEW_TOPIC}
    assert sum(e in novel for e in grown["examples"]) >= 2, grown["examples"]
    assert "drift" in prompts["summary"]
    picture = prompts["details"]["projection"]
    assert len(picture["reference"]) >= 30 and len(picture["current"]) >= 30
    assert all(len(point) == 2 for point in picture["reference"] + picture["current"])


def test_a_second_run_embeds_nothing_again(daemon: Daemon) -> None:
    misses = daemon.metric("driftwatch_embedding_cache_misses")
    hits = daemon.metric("driftwatch_embedding_cache_hits")
    run_job(daemon, "drift")
    assert daemon.metric("driftwatch_embedding_cache_misses") == misses
    assert daemon.metric("driftwatch_embedding_cache_hits") > hits


def test_toxic_completions_raise_the_toxicity_rate(daemon: Daemon) -> None:
    results = run_job(daemon, "toxicity")
    answers = one(results, service="support-bot", model=None, direction="completion")
    assert answers["anomalous"] is True, answers["summary"]
    details = answers["details"]
    assert details["toxic_rate"] > details["reference_rate"]
    assert details["ci_low"] <= details["toxic_rate"] <= details["ci_high"]
    assert details["top_examples"], "the most toxic texts are shown"
    questions = one(results, service="support-bot", model=None, direction="prompt")
    assert questions["anomalous"] is False, questions["summary"]


def test_the_slowed_model_regresses_and_the_other_does_not(daemon: Daemon) -> None:
    results = run_job(daemon, "latency")
    slowed = one(results, service="support-bot", model=SLOWED_MODEL)
    steady = one(results, service="support-bot", model="gpt-4o-mini")
    assert slowed["anomalous"] is True, slowed["summary"]
    assert slowed["statistic"] > 1.5
    assert steady["anomalous"] is False, steady["summary"]
    burn = slowed["details"]["burn_rates"]
    assert set(burn) == {"availability", "latency"}
    assert list(burn["availability"]) == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]


def test_the_self_check_measures_false_alarms_on_the_reference(daemon: Daemon) -> None:
    checks = run_job(daemon, "self_check")
    assert {(c["model"], c["direction"]) for c in checks if c["service"] == "support-bot"} >= {
        (None, "prompt"), (None, "completion")}
    for check in checks:
        assert check["splits"] == 20
        assert check["false_alarm_rate"] <= 0.15, check  # alpha 0.01: 3 of 20 is already rare
    rate = daemon.metric("driftwatch_drift_self_check_false_alarm_rate",
                         service="support-bot", model="", direction="prompt")
    assert rate == next(c["false_alarm_rate"] for c in checks
                        if c["model"] is None and c["direction"] == "prompt")


def test_status_and_metrics_show_the_latest_results(daemon: Daemon) -> None:
    run_job(daemon, "latency")
    status = [json.loads(line) for line in
              cli("status", "--json", "--ops", daemon.ops).stdout.splitlines()]
    for result in status:
        assert {"detector", "service", "model", "direction", "window_start", "window_end",
                "n_reference", "n_current", "p_value", "anomalous", "summary",
                "details"} <= set(result)
    assert {r["detector"] for r in status} >= {"latency"}
    table = cli("status", "--ops", daemon.ops).stdout
    assert "ANOMALOUS" in table and "support-bot" in table
    report = next(word for line in table.splitlines() if "report:" in line
                  for word in line.split() if "/reports/drift/" in word)
    code, page = get(report)
    assert code == 200 and "<svg" in page and "<table" in page
    assert daemon.metric("driftwatch_latency_p95_ratio", service="support-bot",
                         model=SLOWED_MODEL) > 1.5
    assert daemon.metric("driftwatch_detector_anomalous", detector="latency",
                         service="support-bot", model=SLOWED_MODEL, direction="") == 1


def test_every_call_is_counted_in_the_genai_client_metrics(daemon: Daemon) -> None:
    count = "gen_ai_client_operation_duration_seconds_count"
    assert daemon.metric(count, service_name="support-bot",
                         gen_ai_request_model=SLOWED_MODEL) == 300
    assert daemon.metric(count, service_name="support-bot") == 600
    assert daemon.metric("gen_ai_client_token_usage_count", service_name="support-bot",
                         gen_ai_token_type="output") == 600
    assert daemon.metric("gen_ai_client_token_usage_sum", service_name="support-bot",
                         gen_ai_token_type="input") == 600 * 42


def test_history_survives_a_restart(world: World, daemon: Daemon) -> None:
    run_job(daemon, "latency")
    before = {(r["detector"], r["service"], r["model"], r["direction"]): r["id"] for r in
              json.loads(get(daemon.ops + "/api/v1/results")[1])["results"]}
    again = world.restart()
    after = {(r["detector"], r["service"], r["model"], r["direction"]): r["id"] for r in
             json.loads(get(again.ops + "/api/v1/results")[1])["results"]}
    assert after == before
    baselines = json.loads(get(again.ops + "/api/v1/baselines")[1])["baselines"]
    assert any(b["service"] == "support-bot" and b["source"] == "pinned" for b in baselines)


@pytest.mark.parametrize("body, message", [
    ({"model": "m", "from": "-2h", "to": "-1h"}, "service"),
    ({"service": "s", "from": "-1h", "to": "-2h"}, "to: must be after from"),
    ({"service": "s", "from": "-1h", "to": "2199-01-01T00:00:00Z"},
     "to: a baseline must lie in the past"),
    ({"service": "s", "from": "yesterday", "to": "-1h"}, "from:"),
    ({"service": "s", "from": "-2h", "to": "-1h", "window": "1h"}, "window: unknown field"),
])
def test_a_bad_baseline_is_refused_with_the_field_named(
        daemon: Daemon, body: dict[str, Any], message: str) -> None:
    status, text = request("POST", daemon.ops + "/api/v1/baselines", json.dumps(body).encode(),
                           {"Content-Type": "application/json"})
    assert status == 400
    assert message in json.loads(text)["error"]
