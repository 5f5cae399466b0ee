"""The cost detector on the real daemon: spans exported through the OpenTelemetry SDK with
backdated start times, `driftwatch jobs run cost`, and the alerts it raises delivered to a
loopback webhook."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from monitor.config import load_config
from monitor.core.errors import ConfigError
from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli, get
from tests.monitor.alerting.receivers import Receiver, receiving
from tests.monitor.jobs.test_detection import one, run_job

MINUTE_NS = 60 * 10**9
PRICES = {"defaults": False, "models": [
    {"model": "acme-small", "input_usd_per_million": 1.0, "output_usd_per_million": 4.0},
    {"model": "acme-large", "input_usd_per_million": 4.0, "output_usd_per_million": 16.0}]}
QUIET = {"interval": "1h"}  # jobs run when the test says, not on their schedule


def send(app: LLMApp, rng: random.Random, *, model: str, n: int, start_ns: int,
         minutes: float, input_tokens: int = 500) -> None:
    """`n` calls spread over `minutes` from `start_ns`, token counts varying call to call."""
    for i in range(n):
        app.chat("q", "a", model=model, start_ns=start_ns + int(i * minutes * MINUTE_NS / n),
                 duration_s=0.5, input_tokens=rng.randint(input_tokens // 2, input_tokens * 2),
                 output_tokens=rng.randint(50, 300))


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def cost_daemon(start_daemon: Callable[..., Daemon], hook: Receiver,
                **cost: Any) -> Daemon:
    return start_daemon(
        pricing=PRICES, latency=QUIET,
        cost={"interval": "1h", "window": "1h", "reference": {"mode": "trailing",
                                                              "offset": "2h"}, **cost},
        alerts={"evaluation_interval": "1h", "notifiers": {"webhook": [{"url": hook.url}]}})


def test_a_dearer_model_raises_the_spend_and_steady_spend_stays_quiet(
        start_daemon: Callable[..., Daemon], hook: Receiver) -> None:
    daemon = cost_daemon(start_daemon, hook)
    rng, now = random.Random(5), time.time_ns()
    reference, current = now - 175 * MINUTE_NS, now - 55 * MINUTE_NS  # 2h apart
    for service, later in (("steady", "acme-small"), ("upgraded", "acme-large")):
        app = LLMApp(otlp_exporter("grpc", daemon.grpc), service=service)
        send(app, rng, model="acme-small", n=150, start_ns=reference, minutes=50)
        send(app, rng, model=later, n=150, start_ns=current, minutes=50)
        app.flush()
        app.shutdown()

    results = run_job(daemon, "cost")
    steady = one(results, service="steady", model=None)
    upgraded = one(results, service="upgraded", model=None)
    assert steady["anomalous"] is False, steady["summary"]
    assert upgraded["anomalous"] is True, upgraded["summary"]
    assert upgraded["details"]["cost_per_call_ratio"] == pytest.approx(4.0, rel=0.25)
    assert upgraded["details"]["call_rate_ratio"] == pytest.approx(1.0)
    assert upgraded["summary"].startswith("spend regressed on upgraded")
    # the model that only appeared now has no reference: insufficient data, not "no change"
    assert one(results, service="upgraded", model="acme-large")["anomalous"] is None

    status, page = get(f"{daemon.ops}/reports/cost/{upgraded['id']}")
    assert status == 200 and "Cost of upgraded" in page and "ANOMALOUS" in page
    tests = page.split('id="tests"')[1].split("</section>")[0]
    assert "Mann-Whitney" in tests and "Poisson" in tests

    cli("jobs", "run", "alerts", "--ops", daemon.ops)
    run_job(daemon, "cost")  # LLMCostRegression holds for two results of the job
    cli("jobs", "run", "alerts", "--ops", daemon.ops)
    [body] = hook.wait(1)
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "LLMCostRegression", "service": "upgraded",
                               "severity": "ticket"}
    assert "spends more than its reference" in alert["annotations"]["summary"]


def test_spending_a_days_budget_in_minutes_pages_through_the_webhook(
        start_daemon: Callable[..., Daemon], hook: Receiver) -> None:
    daemon = cost_daemon(start_daemon, hook, budgets={"checkout": {"daily_usd": 1.0},
                                                      "search": {"daily_usd": 1000.0}})
    rng, now = random.Random(6), time.time_ns()
    for service in ("checkout", "search"):  # about 4 USD each in the last four minutes
        app = LLMApp(otlp_exporter("http", daemon.http), service=service)
        send(app, rng, model="acme-large", n=20, start_ns=now - 4 * MINUTE_NS, minutes=3,
             input_tokens=50_000)
        app.flush()
        app.shutdown()

    for _ in range(2):  # the rule holds `for: 2` evaluations that see a new result
        results = run_job(daemon, "cost")
        cli("jobs", "run", "alerts", "--ops", daemon.ops)
    burn = one(results, service="checkout", model=None)["details"]["budget_burn"]
    assert burn["5m"] > 14.4 and burn["1h"] > 14.4
    assert one(results, service="search", model=None)["details"]["budget_burn"]["1h"] < 1
    assert one(results, service="checkout", model="acme-large")["details"]["budget_burn"] == {}

    [body] = hook.wait(1)
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "LLMCostBudgetBurn", "service": "checkout",
                               "severity": "page"}
    assert "burning its daily LLM budget" in alert["annotations"]["summary"]
    assert "budget 1.00 USD a day" in alert["annotations"]["description"]


def test_the_cost_detectors_default_reference_never_refuses_a_short_retention() -> None:
    assert load_config(None, {"DRIFTWATCH_STORE__RETENTION": "1d"}).cost.reference.offset == 86400
    with pytest.raises(ConfigError, match=r"cost\.reference\.offset: a trailing reference"):
        load_config(None, {"DRIFTWATCH_STORE__RETENTION": "1d",
                           "DRIFTWATCH_COST__REFERENCE": "{mode: trailing, offset: 1d}"})
