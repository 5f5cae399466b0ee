"""Every path out of the daemon goes through redaction: a support bot's users paste their
SSN, IBAN, IP address, card, e-mail, phone number and an API key into prompts of a new topic
(so drift shows them as examples) and the model's toxic answers repeat them (so toxicity
does); none of the raw values reaches `driftwatch status --json`, /api/v1/results, the
report pages, the alerts API, or what a webhook and a Slack receiver on loopback get. A
judge fails the exchanges that carry personal data and quotes it in its explanation (so the
evaluation detector's worst-scored examples show prompt, completion and explanation). The
texts stay in the store unredacted, which is what proves they were sent."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.evaluator import Evaluator, log_exporter
from tests.harness import Daemon, cli, get, wait_for, write_config
from tests.monitor.alerting.receivers import Receiver, receiving
from tests.texts import rows

pytestmark = pytest.mark.slow

MINUTE_NS = 60 * 10**9
NEW_TOPIC = "card_payments_refunds"  # a banking77 group absent from the baseline

# what users pasted, each as it would come out when its kind's placeholder replaced it
PERSONAL = {
    "123-45-6789": "[SSN]",
    "DE89 3704 0044 0532 0130 00": "[IBAN]",
    "203.0.113.45": "[IP]",
    "4111 1111 1111 1111": "[CARD]",
    "jane.roe@example.org": "[EMAIL]",
    "+44 20 7946 0958": "[PHONE]",
    "sk-proj-Q3vT8mZp2LwX9rKd4NbY7sHc": "[SECRET]",
    "PESEL 01302982881": "[NATIONAL_ID]",
    "EMP-004217": "[EMPLOYEE]",  # the deployment's own pattern (redaction.patterns)
}
CARRIERS = [
    "my ssn is 123-45-6789 and my IBAN DE89 3704 0044 0532 0130 00",
    "I paid from 203.0.113.45 with card 4111 1111 1111 1111",
    "write to jane.roe@example.org or call +44 20 7946 0958",
    "my key sk-proj-Q3vT8mZp2LwX9rKd4NbY7sHc leaked, PESEL 01302982881, staff EMP-004217",
]
RAW = [value.split()[-1] if value.startswith("PESEL") else value for value in PERSONAL]


def send(app: LLMApp, *, start_ns: int, minutes: float, n: int, shifted: bool,
         rng: random.Random, judge: Evaluator | None = None) -> None:
    """Banking questions answered by the model; once shifted, a third of the prompts are of
    a new topic and carry personal data, and 30% of the answers are toxic and repeat it. A
    judge, when given, fails the calls that carry personal data, quoting it."""
    prompts = rows("banking77")
    usual = [r["text"] for r in prompts if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in prompts if r["group"] == NEW_TOPIC]
    benign = [r["text"][:400] for r in rows("arena_hard_responses")]
    toxic = [r["text"] for r in rows("toxicity")
             if r["toxic"] and r["dataset"] in ("davidson_hate_offensive", "convabuse")]
    for i in range(n):
        prompt, completion = rng.choice(usual), rng.choice(benign)
        if shifted and rng.random() < 0.35:
            prompt = f"{rng.choice(novel)} {CARRIERS[i % len(CARRIERS)]}"
        if shifted and rng.random() < 0.3:
            completion = f"{rng.choice(toxic)} {CARRIERS[(i + 1) % len(CARRIERS)]}"
        call = app.chat(prompt, completion, model="gpt-4o-mini",
                        start_ns=start_ns + int(i * minutes * MINUTE_NS / n),
                        duration_s=rng.lognormvariate(0, 0.25))
        if judge is not None:
            quoted = [c for c in CARRIERS if c in prompt or c in completion]
            judge.evaluate(call, "privacy", score=0.1 if quoted else 0.9,
                           explanation=f"the exchange repeats: {quoted[0]}" if quoted
                           else "no personal data")


class World:
    def __init__(self, directory: Path, hook: Receiver, slack: Receiver) -> None:
        config = write_config(
            directory,
            drift={"enabled": True, "interval": "1h", "permutations": 200, "min_samples": 30,
                   "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "1h"},
            embedding={"threads": 2},
            toxicity={"enabled": True, "interval": "1h", "min_samples": 30},
            redaction={"patterns": [{"name": "employee_id", "regex": r"EMP-\d{6}",
                                     "placeholder": "[EMPLOYEE]"}]},
            latency={"interval": "1h", "min_samples": 30},
            evaluation={"interval": "1h", "window": "1h", "min_samples": 30},
            alerts={"evaluation_interval": "1h",
                    "rules": {"LLMToxicityHigh": {"when": "anomalous"}},
                    "notifiers": {"webhook": [{"url": hook.url}],
                                  "slack": [{"url": slack.url + "/services/T0/B0/x"}]}})
        self.daemon = Daemon(config_path=config, store_path=directory / "driftwatch.db").start()
        app = LLMApp(otlp_exporter("grpc", self.daemon.grpc))
        judge = Evaluator(log_exporter("grpc", self.daemon.grpc))
        rng = random.Random(5)
        now = time.time_ns()
        send(app, start_ns=now - 110 * MINUTE_NS, minutes=40, n=300, shifted=False, rng=rng,
             judge=judge)
        send(app, start_ns=now - 50 * MINUTE_NS, minutes=48, n=300, shifted=True, rng=rng,
             judge=judge)
        app.flush()
        app.shutdown()
        judge.flush()
        judge.shutdown()
        assert app.exporter.failures == 0
        wait_for(lambda: self.daemon.metric("driftwatch_evaluations_joined_total") == 600)
        cli("baseline", "set", "--service", "support-bot", "--from", "-111m", "--to", "-69m",
            "--ops", self.daemon.ops)
        for job in ("drift", "toxicity", "evaluation", "alerts"):
            post = urllib.request.Request(f"{self.daemon.ops}/api/v1/jobs/{job}/run", b"{}",
                                          {"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(post, timeout=300).close()


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    with receiving() as hook, receiving() as slack:
        yield hook, slack


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory,
          receivers: tuple[Receiver, Receiver]) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("redaction-paths"), *receivers)
    try:
        yield world
    finally:
        world.daemon.stop()


def leaked(text: str) -> list[str]:
    return [value for value in RAW if value in text]


def test_the_values_were_sent_and_stored_as_they_were(world: World) -> None:
    stored = cli("calls", "--service", "support-bot", "--since", "3h", "--json",
                 "--config", str(world.daemon.config_path)).stdout
    assert sorted(leaked(stored)) == sorted(RAW), "the test sends what it checks for"


def test_status_and_the_results_api_show_placeholders_not_values(world: World) -> None:
    status = cli("status", "--json", "--ops", world.daemon.ops).stdout
    results = get(world.daemon.ops + "/api/v1/results")[1]
    for out in (status, results):
        assert leaked(out) == []
    examples = json.dumps([r["details"] for r in map(json.loads, status.splitlines())
                           if r["detector"] in ("drift", "toxicity")])
    shown = {p for p in PERSONAL.values() if p in examples}
    assert len(shown) >= 4, f"examples carry the redacted texts, got: {sorted(shown)}"


def test_report_pages_show_placeholders_not_values(world: World) -> None:
    results = json.loads(get(world.daemon.ops + "/api/v1/results")[1])["results"]
    pages = [get(f"{world.daemon.ops}/reports/{r['detector']}/{r['id']}")
             for r in results if r["detector"] in ("drift", "toxicity")]
    assert pages and all(status == 200 for status, _ in pages)
    for _, page in pages:
        assert leaked(page) == []
    assert any("[" in p and "]" in p and any(v in p for v in PERSONAL.values())
               for _, p in pages)


def test_alerts_and_what_receivers_get_carry_no_values(
        world: World, receivers: tuple[Receiver, Receiver]) -> None:
    hook, slack = receivers
    firing = json.loads(get(world.daemon.ops + "/api/v1/alerts")[1])["alerts"]
    toxicity = cli("status", "--json", "--detector", "toxicity", "--ops", world.daemon.ops).stdout
    assert {a["labels"]["alertname"] for a in firing} >= {"LLMPromptDrift", "LLMToxicityHigh"}, \
        toxicity
    sent: list[Any] = [*hook.wait(1, timeout=60), *slack.wait(1, timeout=60)]
    for out in (json.dumps(firing), json.dumps(sent)):
        assert leaked(out) == []
    assert any(p in json.dumps(sent) for p in PERSONAL.values()), \
        "the alerts quote examples, redacted"


def test_evaluation_examples_and_their_alert_carry_no_values(
        world: World, receivers: tuple[Receiver, Receiver]) -> None:
    status = cli("status", "--json", "--detector", "evaluation", "--ops",
                 world.daemon.ops).stdout
    [privacy] = [r for r in map(json.loads, status.splitlines())
                 if r["details"]["evaluation"] == "privacy" and r["model"] is None]
    assert privacy["anomalous"] is True, privacy["summary"]
    examples = privacy["details"]["worst_examples"]
    shown = json.dumps(examples)
    assert examples and leaked(shown) == []
    assert all(e["explanation"].startswith("the exchange repeats: ") for e in examples)
    assert {p for p in PERSONAL.values() if p in shown}, "the examples are quoted, redacted"
    page = get(f"{world.daemon.ops}/reports/evaluation/{privacy['id']}")[1]
    assert leaked(page) == [] and "the exchange repeats: " in page
    assert any(p in page for p in PERSONAL.values())
    hook, slack = receivers
    sent = json.dumps([*hook.bodies(), *slack.bodies()])
    assert "LLMEvaluationDrop" in sent and leaked(sent) == []
