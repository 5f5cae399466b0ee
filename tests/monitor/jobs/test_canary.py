"""The canary on the real daemon, fed through the real OpenTelemetry SDK: a release whose
calls are twice as slow as the one before it is a regression, paged through a webhook to a
loopback receiver with the comparison's link; a release that behaves the same is not; a
service with one version has no canary at all; a release on a dearer model whose answers an
evaluator passes less often regresses on cost per call and that evaluation's pass rate."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monitor.config import load_config
from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import Evaluator, log_exporter
from tests.harness import Daemon, cli, get
from tests.monitor.alerting.receivers import Receiver, receiving

MINUTE_NS = 60 * 10**9
RETRY = {"attempts": 3, "backoff": "50ms", "max_backoff": "2s", "timeout": "5s"}


def release(daemon: Daemon, service: str, version: str, rng: random.Random, *, n: int,
            minutes_ago: tuple[int, int], median_s: float) -> None:
    """`n` calls of one release spread over (from, to) minutes ago."""
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service=service, version=version)
    now = time.time_ns()
    for i in range(n):
        ago = minutes_ago[0] - (minutes_ago[0] - minutes_ago[1]) * i / n
        app.chat("Where is my card?", "It is on its way.", start_ns=now - int(ago * MINUTE_NS),
                 duration_s=median_s * math.exp(rng.gauss(0, 0.4)),
                 input_tokens=rng.randrange(300, 500), output_tokens=rng.randrange(100, 300))
    app.flush()
    app.shutdown()


def run(daemon: Daemon, job: str) -> list[dict[str, Any]]:
    out = cli("jobs", "run", job, "--json", "--config", str(daemon.config_path),
              "--ops", daemon.ops).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture
def rollout(start_daemon: Callable[..., Daemon], hook: Receiver) -> Daemon:
    rules = {name: False for name in load_config(None, environ={}).alerts.rules}
    daemon = start_daemon(
        canary={"interval": "1h"},
        alerts={"evaluation_interval": "1h", "rules": {**rules, "LLMCanaryRegression": {}},
                "notifiers": {"webhook": [{"url": hook.url + "/hook"}], "retry": RETRY}})
    rng = random.Random(7)
    release(daemon, "support-bot", "1.4.1", rng, n=200, minutes_ago=(50, 20), median_s=1.0)
    release(daemon, "support-bot", "1.4.2", rng, n=200, minutes_ago=(15, 1), median_s=2.0)
    release(daemon, "search-bot", "2.0", rng, n=200, minutes_ago=(50, 20), median_s=1.0)
    release(daemon, "search-bot", "2.1", rng, n=200, minutes_ago=(15, 1), median_s=1.0)
    release(daemon, "faq-bot", "1.0", rng, n=50, minutes_ago=(50, 1), median_s=1.0)
    return daemon


def test_a_slower_release_is_paged_with_its_comparison_and_a_same_one_is_not(
        rollout: Daemon, hook: Receiver) -> None:
    results = {r["service"]: r for r in run(rollout, "canary")}

    assert set(results) == {"support-bot", "search-bot"}  # faq-bot has one version
    slow, same = results["support-bot"], results["search-bot"]
    assert slow["anomalous"] is True
    assert slow["details"]["version"] == "1.4.2"
    assert slow["details"]["previous_version"] == "1.4.1"
    assert "latency_p50" in slow["details"]["regressed"]
    assert (slow["n_reference"], slow["n_current"]) == (200, 200)
    assert slow["summary"].startswith("canary of support-bot, B = 1.4.2 against A = 1.4.1: "
                                      "B regressed: median latency")
    assert same["anomalous"] is False and same["details"]["regressed"] == []

    status, page = get(rollout.ops + slow["details"]["report"])
    assert status == 200 and "REGRESSED" in page

    run(rollout, "alerts")
    [firing] = hook.wait(1)
    [alert] = firing["alerts"]
    assert alert["labels"]["alertname"] == "LLMCanaryRegression"
    assert alert["labels"]["service"] == "support-bot"
    assert alert["annotations"]["summary"] == "support-bot 1.4.2 regressed against 1.4.1"
    assert slow["details"]["report"] in alert["annotations"]["description"]
    assert alert["annotations"]["report_url"].endswith(f"/reports/canary/{slow['id']}")
    assert "median latency: B is worse" in alert["annotations"]["regressions"]
    status, page = get(rollout.ops + f"/reports/canary/{slow['id']}")
    assert status == 200 and "Canary of support-bot 1.4.2" in page
    assert f'<a href="{slow["details"]["report"]}">' in page

    listed = cli("status", "--detector", "canary", "--json", "--config",
                 str(rollout.config_path), "--ops", rollout.ops).stdout.splitlines()
    assert {json.loads(line)["service"] for line in listed} == {"support-bot", "search-bot"}


def test_a_release_on_a_dearer_model_whose_answers_fail_more_is_a_regression(
        start_daemon: Callable[..., Daemon], hook: Receiver) -> None:
    """Release 3.0 moves to gpt-4o (about 16x gpt-4o-mini's price) and its answers are judged
    relevant less often: the canary names cost per call and the relevance pass rate."""
    rules = {name: False for name in load_config(None, environ={}).alerts.rules}
    daemon = start_daemon(
        canary={"interval": "1h"},
        alerts={"evaluation_interval": "1h", "rules": {**rules, "LLMCanaryRegression": {}},
                "notifiers": {"webhook": [{"url": hook.url + "/hook"}], "retry": RETRY}})
    rng = random.Random(8)
    judge = Evaluator(log_exporter("http", daemon.http), service="support-bot")
    now = time.time_ns()
    for version, model, relevant, ago in (("2.0", "gpt-4o-mini", 0.9, 50),
                                          ("3.0", "gpt-4o", 0.55, 15)):
        app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot", version=version)
        for i in range(150):
            call = app.chat("Where is my card?", "It is on its way.", model=model,
                            start_ns=now - int((ago - i / 12) * MINUTE_NS), duration_s=1.0,
                            input_tokens=400, output_tokens=200)
            judge.evaluate(call, "relevance",
                           label="relevant" if rng.random() < relevant else "irrelevant")
        app.flush()
        app.shutdown()
    judge.flush()
    judge.shutdown()

    [result] = run(daemon, "canary")

    assert result["anomalous"] is True
    assert set(result["details"]["regressed"]) == {"cost_per_call",
                                                   "evaluation_pass_rate:relevance"}
    run(daemon, "alerts")
    [firing] = hook.wait(1)
    [alert] = firing["alerts"]
    assert alert["labels"]["alertname"] == "LLMCanaryRegression"
    assert "cost per call: B is worse" in alert["annotations"]["regressions"]
    assert "relevance pass rate: B is worse" in alert["annotations"]["regressions"]


def test_compare_and_canary_settings_are_checked_naming_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "bad.yaml"
    for text, message in (
            ("compare: {text_cap: 20, min_samples: 30}", "text_cap: must be at least min_samples"),
            ("canary: {alpha: 2}", "canary.alpha"),
            ("ingest: {variant_attribute: ''}", "ingest.variant_attribute")):
        config.write_text(text)
        done = cli("validate", str(config), check=False)
        assert done.returncode == 2 and message in done.stderr, (text, done.stderr)
