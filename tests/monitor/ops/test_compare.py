"""`driftwatch compare` against the real daemon, fed through the real OpenTelemetry SDK: two
models of which one is slower, two releases that behave the same, the report page, and the
clear errors for an unknown service, an empty side and a malformed side."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import Evaluator, log_exporter
from tests.harness import Daemon, cli, get, request
from tests.texts import rows

MEASURES = {"latency_p50", "latency_p95", "error_rate", "input_tokens", "output_tokens",
            "cost_per_call", "toxicity_rate", "completion_drift"}


def send(app: LLMApp, rng: random.Random, n: int, *, model: str = "gpt-4o",
         median_s: float = 1.0, error_rate: float = 0.02,
         attributes: dict[str, Any] | None = None) -> None:
    """`n` calls over the last 20 minutes, durations log-normal around `median_s`."""
    now = time.time_ns()
    for _ in range(n):
        start = now - rng.randrange(60, 1200) * 10**9
        app.chat("Where is my card?", "It is on its way.", model=model, start_ns=start,
                 duration_s=median_s * math.exp(rng.gauss(0, 0.4)),
                 error="RateLimitError" if rng.random() < error_rate else None,
                 input_tokens=rng.randrange(300, 500), output_tokens=rng.randrange(100, 300),
                 attributes=attributes)


def compare(daemon: Daemon, *args: str, check: bool = True) -> Any:
    return cli("compare", "--config", str(daemon.config_path), "--ops", daemon.ops, *args,
               check=check)


def measures(daemon: Daemon, *args: str) -> dict[str, dict[str, Any]]:
    lines = compare(daemon, *args, "--json").stdout.splitlines()
    found = [json.loads(line) for line in lines]
    return {m["measure"]: m for m in found}


@pytest.fixture
def traffic(start_daemon: Callable[..., Daemon]) -> Daemon:
    """support-bot on two models, gpt-4o-mini 60% slower; search-bot on two releases that
    behave the same, with a prompt template version attribute."""
    daemon = start_daemon(ingest={"variant_attribute": "prompt.template.version"})
    rng = random.Random(12)
    bot = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot")
    send(bot, rng, 300, model="gpt-4o")
    send(bot, rng, 300, model="gpt-4o-mini", median_s=1.6)
    for version in ("1.0", "1.1"):
        app = LLMApp(otlp_exporter("http", daemon.http), service="search-bot", version=version)
        send(app, rng, 300, attributes={"prompt.template.version": f"t{version}"})
        app.flush()
        app.shutdown()
    bot.flush()
    bot.shutdown()
    return daemon


def test_a_slower_model_is_a_significant_latency_regression(traffic: Daemon) -> None:
    found = measures(traffic, "--service", "support-bot", "--a", "model=gpt-4o",
                     "--b", "model=gpt-4o-mini")

    assert set(found) == MEASURES
    for m in found.values():
        assert {"measure", "a", "b", "p_value", "significant", "verdict"} <= set(m)
    p50 = found["latency_p50"]
    assert p50["significant"] is True and p50["worse"] is True
    assert p50["n_a"] == p50["n_b"] == 300
    assert 1.4 < p50["b"] / p50["a"] < 1.9
    assert p50["p_value"] < 1e-6
    assert found["error_rate"]["significant"] is False
    assert found["toxicity_rate"]["significant"] is None  # the toxicity detector is off


def test_two_releases_that_behave_the_same_are_not_significantly_different(
        traffic: Daemon) -> None:
    by_version = measures(traffic, "--service", "search-bot", "--a", "version=1.0",
                          "--b", "version=1.1")
    by_template = measures(traffic, "--service", "search-bot",
                           "--a", "prompt.template.version=t1.0", "--b", "variant=t1.1")

    for found in (by_version, by_template):
        tested = {name: m for name, m in found.items() if m["p_value"] is not None}
        assert set(tested) == {"latency_p50", "latency_p95", "error_rate", "input_tokens",
                               "output_tokens", "cost_per_call"}
        assert all(m["significant"] is False for m in tested.values()), tested


def test_the_table_names_the_verdict_and_links_a_self_contained_report(traffic: Daemon) -> None:
    out = compare(traffic, "--service", "support-bot", "--a", "model=gpt-4o",
                  "--b", "model=gpt-4o-mini").stdout

    assert "B regressed: median latency, p95 latency worse than A" in out
    url = out.strip().splitlines()[-1].removeprefix("report: ")
    status, page = get(url)
    assert status == 200
    assert "REGRESSED" in page and "model=gpt-4o-mini" in page
    assert "<script" not in page and "http://" not in page.replace(url, "")
    comparison = url.rsplit("/", 1)[1]
    assert json.loads(get(f"{traffic.ops}/api/v1/compare/{comparison}")[1])["service"] == (
        "support-bot")
    assert get(f"{traffic.ops}/reports/compare/999999")[0] == 404
    assert get(f"{traffic.ops}/reports/compare/abc")[0] == 400


def test_an_unknown_service_an_empty_side_and_a_bad_side_get_clear_errors(
        traffic: Daemon) -> None:
    unknown = compare(traffic, "--service", "nope", "--a", "model=a", "--b", "model=b",
                      check=False)
    empty = compare(traffic, "--service", "support-bot", "--a", "model=gpt-4o",
                    "--b", "model=claude-3", check=False)
    bad = compare(traffic, "--service", "support-bot", "--a", "colour=red", "--b",
                  "model=gpt-4o", check=False)
    same = compare(traffic, "--service", "support-bot", "--a", "model=gpt-4o", "--b",
                   "model=gpt-4o", check=False)

    assert unknown.returncode == 1 and "404: service: no calls of 'nope'" in unknown.stderr
    assert empty.returncode == 1
    assert "b: no calls of 'support-bot' with model=claude-3" in empty.stderr
    assert "model values seen: gpt-4o, gpt-4o-mini" in empty.stderr
    assert "400: a: unknown key 'colour'" in bad.stderr
    assert "400: b: the same side as a" in same.stderr
    status, body = request("POST", f"{traffic.ops}/api/v1/compare",
                           json.dumps({"service": "support-bot", "a": "model=gpt-4o",
                                       "b": "model=gpt-4o-mini", "since": "yesterday"}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 400 and "since:" in json.loads(body)["error"]


def test_toxic_completions_of_b_are_scored_by_the_toxicity_classifier_and_drift(
        start_daemon: Callable[..., Daemon]) -> None:
    """With the drift and toxicity detectors on, their embedder and classifier score both
    sides: B answers the same prompts, a third of the time with abuse."""
    daemon = start_daemon(drift={"enabled": True, "interval": "1h"},
                          toxicity={"enabled": True, "interval": "1h"})
    rng = random.Random(5)
    prompts = [r["text"] for r in rows("banking77")][:150]
    benign = [r["text"][:160] for r in rows("arena_hard_responses")]
    toxic = [r["text"] for r in rows("toxicity")
             if r["toxic"] and r["dataset"] in ("davidson_hate_offensive", "convabuse")]
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot")
    now = time.time_ns()
    for i, prompt in enumerate(prompts):
        for model, rate in (("gpt-4o", 0.0), ("tuned-7b", 0.35)):
            answer = rng.choice(toxic if rng.random() < rate else benign)
            app.chat(prompt, answer, model=model, start_ns=now - (i + 10) * 10**9,
                     duration_s=1.0)
    app.flush()
    app.shutdown()

    found = measures(daemon, "--service", "support-bot", "--a", "model=gpt-4o",
                     "--b", "model=tuned-7b")

    tox = found["toxicity_rate"]
    assert tox["significant"] is True and tox["worse"] is True
    assert tox["a"] < 0.1 < 0.2 < tox["b"]
    drift = found["completion_drift"]
    assert drift["significant"] is True and "paired" in drift["test"]
    assert found["latency_p50"]["significant"] is False


def test_a_release_that_costs_more_and_passes_less_often_says_so(
        start_daemon: Callable[..., Daemon]) -> None:
    """Release 2.0 moves from gpt-4o-mini to the dearer gpt-4o and its answers are judged
    relevant less often; an LLM judge reports relevance (labels and scores) and, on a few
    calls of release 1.0 only, tone, through the real SDK's OTLP log exporter."""
    daemon = start_daemon()
    rng = random.Random(21)
    judge = Evaluator(log_exporter("grpc", daemon.grpc), service="support-bot")
    now = time.time_ns()
    for version, model, relevant in (("1.0", "gpt-4o-mini", 0.9), ("2.0", "gpt-4o", 0.6)):
        app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot", version=version)
        for i in range(200):
            call = app.chat("Where is my card?", "It is on its way.", model=model,
                            start_ns=now - (i + 10) * 10**9, duration_s=1.0,
                            input_tokens=400, output_tokens=rng.randrange(100, 300))
            good = rng.random() < relevant
            judge.evaluate(call, "relevance", label="relevant" if good else "irrelevant",
                           score=round(rng.betavariate(5, 2) if good else rng.betavariate(2, 5),
                                       3))
            if version == "1.0" and i % 4 == 0:
                judge.evaluate(call, "tone", score=1.0)
        app.flush()
        app.shutdown()
    judge.flush()
    judge.shutdown()

    found = measures(daemon, "--service", "support-bot", "--a", "version=1.0",
                     "--b", "version=2.0")

    cost = found["cost_per_call"]
    assert cost["significant"] is True and cost["worse"] is True
    assert cost["unit"] == "USD" and cost["n_a"] == cost["n_b"] == 200
    assert cost["b"] > 10 * cost["a"]  # gpt-4o's list price is ~16x gpt-4o-mini's
    rate = found["evaluation_pass_rate:relevance"]
    assert rate["evaluation"] == "relevance"
    assert rate["significant"] is True and rate["worse"] is True
    assert (rate["n_a"], rate["n_b"]) == (200, 200)
    assert rate["a"] > 0.8 and rate["b"] < 0.7
    assert found["evaluation_score:relevance"]["worse"] is True
    assert not any("tone" in name for name in found)  # judged on one side only
    assert found["latency_p50"]["significant"] is False
    table = compare(daemon, "--service", "support-bot", "--a", "version=1.0",
                    "--b", "version=2.0").stdout
    assert "cost per call" in table and "relevance pass rate" in table
    status, page = get(table.strip().splitlines()[-1].removeprefix("report: "))
    assert status == 200 and f"<td class=num>{rate['b']:.2%}</td>" in page  # as a share
