"""Alerts from the real daemon to the real Alertmanager and a PagerDuty-like receiver.

A support bot's traffic, exported through the real OpenTelemetry SDK, shifts after a
pinned baseline: new prompts, toxic completions, a slower model. `driftwatch jobs run`
finds it, the `alerts` job fires, and Alertmanager lists the alerts with their
explanations; once a baseline of the shifted traffic is pinned, they resolve. A restart
while an alert fires neither pages again nor loses the resolve."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli, get, write_config
from tests.monitor.alerting.receivers import Answer, Receiver, receiving
from tests.texts import rows

pytestmark = pytest.mark.slow

MINUTE_NS = 60 * 10**9
SLOWED_MODEL = "gpt-4o"
NEW_TOPIC = "card_payments_refunds"  # a banking77 group absent from the normal traffic
RETRY = {"attempts": 3, "backoff": "50ms", "max_backoff": "2s", "timeout": "5s"}
AM_CONFIG = """
route: {receiver: "null", group_by: [alertname, service], group_wait: 0s, group_interval: 1s}
receivers: [{name: "null"}]
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real Alertmanager on a free loopback port, clustering off."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    amtool = shutil.which("amtool")
    if binary is None or amtool is None:
        pytest.skip("Alertmanager is not installed (apt-get install prometheus-alertmanager)")
    directory = tmp_path_factory.mktemp("alertmanager")
    config = directory / "alertmanager.yml"
    config.write_text(AM_CONFIG)
    subprocess.run([amtool, "check-config", str(config)], check=True, capture_output=True)
    url = f"http://127.0.0.1:{free_port()}"
    with (directory / "log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={directory / 'data'}",
             f"--web.listen-address={url.removeprefix('http://')}", "--cluster.listen-address="],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/-/ready", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((directory / "log").read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def am_alerts(url: str) -> dict[str, dict[str, Any]]:
    """Alertmanager's active alerts by '<alertname> <labels>'."""
    return {_key(a["labels"]): a for a in fetch(url + "/api/v2/alerts")}


def _key(labels: dict[str, str]) -> str:
    rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                    if k not in ("alertname", "severity"))
    return f"{labels['alertname']} {rest}"


def run_jobs(daemon: Daemon, *names: str) -> None:
    """What `driftwatch jobs run NAME` does, without a process per job."""
    for name in names:
        post = urllib.request.Request(f"{daemon.ops}/api/v1/jobs/{name}/run", b"{}",
                                      {"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(post, timeout=300).close()


def alerts(daemon: Daemon, *flags: str) -> dict[str, dict[str, Any]]:
    """`driftwatch alerts --json [--all]`, read from the API it uses."""
    found = json.loads(get(daemon.ops + "/api/v1/alerts")[1])["alerts"]
    return {_key(a["labels"]): a for a in found if "--all" in flags or a["state"] != "resolved"}


def wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return value


def delivered(daemon: Daemon, kind: str, *flags: str) -> dict[str, dict[str, Any]]:
    """Alerts (firing, or resolved with --all) once every one had a `kind` delivery of its
    current state."""
    def done() -> dict[str, dict[str, Any]] | None:
        found = {k: a for k, a in alerts(daemon, *flags).items() if a["state"] != "pending"}
        ok = all(any(n.startswith(kind) and d["state"] == a["state"]
                     for n, d in a["deliveries"].items()) for a in found.values())
        return found if ok else None
    return wait_until(done)


def pin(daemon: Daemon, start: str, end: str) -> None:
    cli("baseline", "set", "--service", "support-bot", "--from", start, "--to", end,
        "--ops", daemon.ops)


# -- drift, toxicity and latency through Alertmanager -------------------------------------------


def send_support_traffic(app: LLMApp, *, start_ns: int, minutes: float, n: int,
                         shifted: bool, rng: random.Random) -> None:
    """A support bot's calls over a window; shifted: 30% of prompts from a new topic, 15% of
    completions toxic (davidson, convabuse) and one model twice as slow. Answers are cut
    short: the embedding model's time, not the texts' length, is what a test pays for."""
    prompts = rows("banking77")
    usual = [r["text"] for r in prompts if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in prompts if r["group"] == NEW_TOPIC]
    benign = [r["text"][:160] for r in rows("arena_hard_responses")]
    toxic = [r["text"] for r in rows("toxicity")
             if r["toxic"] and r["dataset"] in ("davidson_hate_offensive", "convabuse")]
    for i in range(n):
        model = SLOWED_MODEL if i % 2 else "gpt-4o-mini"
        prompt = rng.choice(novel if shifted and rng.random() < 0.3 else usual)
        completion = rng.choice(toxic if shifted and rng.random() < 0.15 else benign)
        slow = 2.0 if shifted and model == SLOWED_MODEL else 1.0
        app.chat(prompt, completion, model=model,
                 start_ns=start_ns + int(i * minutes * MINUTE_NS / n),
                 duration_s=slow * rng.lognormvariate(0, 0.25))


class World:
    """One daemon with every detector, sending to Alertmanager and a webhook."""

    def __init__(self, directory: Path, alertmanager: str, hook: Receiver) -> None:
        config = write_config(
            directory,
            # the default 1,000 permutations: at 200 no p-value falls below 1/201, too coarse
            # for Benjamini-Hochberg over 3 tests of 6 segments to keep a shift whose
            # neighbourhood scan is not also at the floor
            drift={"enabled": True, "interval": "1h", "min_samples": 30,
                   "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "1h"},
            embedding={"threads": 2},
            toxicity={"enabled": True, "interval": "1h", "min_samples": 30},
            latency={"interval": "1h", "min_samples": 30},
            alerts={"evaluation_interval": "1h", "grafana_url": "http://grafana.test:3000",
                    "rules": {"LLMToxicityHigh": {"when": "anomalous"}},
                    "notifiers": {"alertmanager": [{"url": alertmanager}],
                                  "webhook": [{"url": hook.url}], "retry": RETRY}})
        self.daemon = Daemon(config_path=config, store_path=directory / "driftwatch.db").start()
        app = LLMApp(otlp_exporter("grpc", self.daemon.grpc))
        rng = random.Random(11)
        now = time.time_ns()
        for start_min, minutes, shifted in ((200, 40, False), (130, 40, True), (14, 13, True)):
            send_support_traffic(app, start_ns=now - start_min * MINUTE_NS, minutes=minutes,
                                 n=300, shifted=shifted, rng=rng)
        app.flush()
        app.shutdown()
        pin(self.daemon, "-201m", "-159m")  # the normal traffic


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, alertmanager: str,
          hook: Receiver) -> Iterator[World]:
    world = World(tmp_path_factory.mktemp("alerts-e2e"), alertmanager, hook)
    try:
        yield world
    finally:
        world.daemon.stop()


def test_drift_toxicity_and_latency_alerts_reach_alertmanager(
        world: World, alertmanager: str) -> None:
    daemon = world.daemon
    run_jobs(daemon, "drift", "toxicity", "latency", "alerts")
    first = delivered(daemon, "alertmanager")
    pending = {k for k, a in alerts(daemon).items() if a["state"] == "pending"}
    assert "LLMLatencyRegression model=gpt-4o,service=support-bot" in pending
    listed = am_alerts(alertmanager)
    assert set(listed) == set(first), "pending alerts are never sent"

    run_jobs(daemon, "latency", "alerts")  # a second latency run: `for: 2` is met
    ours = delivered(daemon, "alertmanager")
    listed = wait_until(lambda: (found := am_alerts(alertmanager)).keys() == ours.keys()
                        and found)
    for name in ("LLMPromptDrift direction=prompt,service=support-bot",
                 "LLMToxicityHigh direction=completion,service=support-bot",
                 f"LLMLatencyRegression model={SLOWED_MODEL},service=support-bot"):
        assert name in listed, sorted(listed)
        assert listed[name]["fingerprint"] == ours[name]["fingerprint"]
        assert listed[name]["startsAt"][:22] == ours[name]["starts_at"][:22]
        assert listed[name]["status"]["state"] == "active"

    drift = listed["LLMPromptDrift direction=prompt,service=support-bot"]
    assert drift["labels"] == {"alertname": "LLMPromptDrift", "severity": "ticket",
                               "service": "support-bot", "direction": "prompt"}
    assert drift["annotations"]["summary"] == \
        "Prompts to support-bot drifted from their reference"
    assert "drift in prompts of support-bot" in drift["annotations"]["description"]
    assert " -> " in drift["annotations"]["explanation"], "the clusters that moved"
    assert drift["annotations"]["dashboard_url"] == \
        "http://grafana.test:3000/d/driftwatch-quality?var-service=support-bot&var-direction=prompt"
    assert drift["generatorURL"] == f"{daemon.ops}/api/v1/alerts?alertname=LLMPromptDrift"
    # endsAt = now + 4 x max(the drift job's 1h, resend_delay 1m)
    ends = time.mktime(time.strptime(drift["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    starts = time.mktime(time.strptime(drift["startsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 4 * 3600 - 120 < ends - starts < 4 * 3600 + 120
    toxic = listed["LLMToxicityHigh direction=completion,service=support-bot"]
    assert "toxic" in toxic["annotations"]["summary"] and toxic["annotations"]["examples"]
    slow = listed[f"LLMLatencyRegression model={SLOWED_MODEL},service=support-bot"]
    assert "slower than its reference" in slow["annotations"]["summary"]

    assert daemon.metric("driftwatch_alerts", alertname="LLMPromptDrift", state="firing") >= 1
    assert daemon.metric("driftwatch_notifications_total", notifier="alertmanager",
                         outcome="sent") >= 2


def test_they_resolve_when_the_shifted_traffic_is_the_reference(
        world: World, alertmanager: str, hook: Receiver) -> None:
    daemon = world.daemon
    pin(daemon, "-131m", "-89m")  # the shifted traffic, before the current window
    run_jobs(daemon, "drift", "toxicity", "latency", "alerts")
    assert alerts(daemon) == {}
    resolved = delivered(daemon, "alertmanager", "--all")
    assert resolved and all(a["state"] == "resolved" and a["ends_at"]
                            for a in resolved.values())
    wait_until(lambda: am_alerts(alertmanager) == {})

    def sent(status: str) -> set[str]:
        return {_key(a["labels"]) for m in hook.bodies() for a in m["alerts"]
                if a["status"] == status}

    # The webhook is told on its own thread: wait for its resolves, then compare.
    wait_until(lambda: sent("resolved") == set(resolved))
    assert sent("firing") == sent("resolved") == set(resolved)
    table = cli("alerts", "--all", "--ops", daemon.ops).stdout
    assert "resolved" in table and "LLMPromptDrift" in table


# -- a restart while an alert fires -------------------------------------------------------------


def test_a_restart_neither_pages_again_nor_loses_the_resolve(tmp_path: Path) -> None:
    with receiving(default=Answer(202, body=b'{"status":"success"}')) as pagerduty:
        config = write_config(
            tmp_path, latency={"interval": "1h", "min_samples": 30},
            alerts={"evaluation_interval": "1h", "rules": {
                "LLMLatencyRegression": {"for": 1, "scope": "service"}},
                "notifiers": {"pagerduty": [{"routing_key": "R" * 32,
                                             "url": pagerduty.url + "/v2/enqueue"}],
                              "retry": RETRY}})
        daemon = Daemon(config_path=config, store_path=tmp_path / "driftwatch.db").start()
        try:
            app = LLMApp(otlp_exporter("http", daemon.http))
            now, rng = time.time_ns(), random.Random(3)
            for start_min, factor in ((200, 1.0), (130, 2.0), (14, 2.0)):
                for i in range(60):
                    app.chat("hello", "hi", start_ns=now - start_min * MINUTE_NS + i * 10**10,
                             duration_s=factor * rng.lognormvariate(0, 0.2))
            app.flush()
            app.shutdown()
            pin(daemon, "-201m", "-159m")
            run_jobs(daemon, "latency")
            cli("jobs", "run", "alerts", "--ops", daemon.ops)
            [trigger] = pagerduty.wait(1)
            assert trigger["event_action"] == "trigger"
            [before] = delivered(daemon, "pagerduty").values()

            daemon.stop()
            daemon.start()
            run_jobs(daemon, "latency", "alerts")
            [after] = map(json.loads, cli("alerts", "--json", "--ops", daemon.ops).stdout
                          .splitlines())
            assert (after["state"], after["starts_at"]) == ("firing", before["starts_at"])
            time.sleep(0.5)
            assert len(pagerduty.requests) == 1, "no second page after the restart"

            pagerduty.answer(default=Answer(503))  # PagerDuty is down when it resolves
            pin(daemon, "-131m", "-89m")
            run_jobs(daemon, "latency", "alerts")
            pagerduty.wait(1 + RETRY["attempts"])
            [owed] = alerts(daemon, "--all").values()
            assert owed["state"] == "resolved"
            assert [d["state"] for d in owed["deliveries"].values()] == ["firing"]

            daemon.stop()
            pagerduty.answer(default=Answer(202, body=b'{"status":"success"}'))
            daemon.start()
            run_jobs(daemon, "alerts")
            delivered(daemon, "pagerduty", "--all")
        finally:
            if daemon.alive():
                daemon.stop()
    bodies = pagerduty.bodies()
    assert [b["event_action"] for b in bodies].count("trigger") == 1
    assert bodies[-1] == {"routing_key": "R" * 32, "dedup_key": trigger["dedup_key"],
                          "event_action": "resolve"}
