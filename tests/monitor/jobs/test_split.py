"""Segments split by version on the real daemon, fed through the real OpenTelemetry SDK.

support-bot ran release 1.0 through a pinned baseline; in the last 50 minutes release 2.0
rolls out beside it and its calls take twice as long. With `jobs.split_by:
[service_version]` each release is a latency segment of its own, measured against the
service's baseline: 2.0 regressed and 1.0 did not, in `status --json` (its `split`), on
/metrics (a `split` label) and in the LLMLatencyRegression alert, which names the release.
With the split off nothing of it appears; past `jobs.max_versions_per_service` the older
releases fold into the service's segment and are counted. The drift and toxicity jobs split
the same way: a release with a new topic and toxic answers shows both on its own segment.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_config
from tests.apps import LLMApp, otlp_exporter
from tests.harness import TORCH_PACKAGES, Daemon, cli, get, without_packages, write_config
from tests.monitor.alerting.receivers import Receiver, receiving
from tests.texts import rows

MINUTE_NS = 60 * 10**9
RETRY = {"attempts": 3, "backoff": "50ms", "max_backoff": "2s", "timeout": "5s"}


def release(daemon: Daemon, version: str, rng: random.Random, *, n: int,
            minutes_ago: tuple[float, float], median_s: float) -> None:
    """`n` calls of one release of support-bot spread over (from, to) minutes ago."""
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot", version=version)
    now = time.time_ns()
    for i in range(n):
        ago = minutes_ago[0] - (minutes_ago[0] - minutes_ago[1]) * i / n
        app.chat("Where is my card?", "It is on its way.", start_ns=now - int(ago * MINUTE_NS),
                 duration_s=median_s * math.exp(rng.gauss(0, 0.3)))
    app.flush()
    app.shutdown()
    assert app.exporter.failures == 0


def rollout(daemon: Daemon, *, old_releases: tuple[str, ...] = ()) -> None:
    rng = random.Random(3)
    release(daemon, "1.0", rng, n=300, minutes_ago=(100, 60), median_s=1.0)
    for version in old_releases:  # a few calls each, before the rollout's window
        release(daemon, version, rng, n=5, minutes_ago=(55, 52), median_s=1.0)
    release(daemon, "1.0", rng, n=200, minutes_ago=(50, 1), median_s=1.0)
    release(daemon, "2.0", rng, n=200, minutes_ago=(48, 1), median_s=2.0)
    cli("baseline", "set", "--service", "support-bot", "--from", "-101m", "--to", "-59m",
        "--ops", daemon.ops)


def run(daemon: Daemon, job: str) -> list[dict[str, Any]]:
    out = cli("jobs", "run", job, "--json", "--ops", daemon.ops).stdout
    return [json.loads(line) for line in out.splitlines()]


def by_segment(results: list[dict[str, Any]]) -> dict[tuple[str | None, str | None], Any]:
    return {(r["model"], r.get("split")): r for r in results if r["service"] == "support-bot"}


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def start(start_daemon: Callable[..., Daemon], hook: Receiver, **jobs: Any) -> Daemon:
    rules = {name: False for name in load_config(None, environ={}).alerts.rules}
    return start_daemon(
        jobs=jobs, latency={"interval": "1h", "window": "1h"},
        alerts={"evaluation_interval": "1h",
                "rules": {**rules, "LLMLatencyRegression": {"for": 1}},
                "notifiers": {"webhook": [{"url": hook.url + "/hook"}], "retry": RETRY}})


def test_a_slower_release_is_its_own_segment_in_status_metrics_and_alerts(
        start_daemon: Callable[..., Daemon], hook: Receiver) -> None:
    daemon = start(start_daemon, hook, split_by=["service_version"])
    rollout(daemon)

    found = by_segment(run(daemon, "latency"))

    assert set(found) == {(None, None), ("gpt-4o-mini", None), (None, "version=1.0"),
                          (None, "version=2.0")}
    new, old = found[None, "version=2.0"], found[None, "version=1.0"]
    assert new["anomalous"] is True, new["summary"]
    assert old["anomalous"] is False, old["summary"]
    assert (new["n_current"], old["n_current"]) == (200, 200)
    assert new["n_reference"] == old["n_reference"] == found[None, None]["n_reference"]
    assert "regressed on support-bot version=2.0:" in new["summary"]
    status = [json.loads(line) for line in cli(
        "status", "--json", "--detector", "latency", "--ops", daemon.ops).stdout.splitlines()]
    assert {r["split"] for r in status} == {None, "version=1.0", "version=2.0"}
    table = cli("status", "--detector", "latency", "--ops", daemon.ops).stdout
    assert "support-bot version=2.0" in table
    assert daemon.metric("driftwatch_detector_anomalous", detector="latency",
                         service="support-bot", split="version=2.0") == 1
    assert daemon.metric("driftwatch_detector_anomalous", detector="latency",
                         service="support-bot", split="version=1.0") == 0
    assert daemon.metric("driftwatch_latency_requests_per_second", service="support-bot",
                         split="version=2.0") > 0
    status_code, page = get(daemon.ops + f"/reports/latency/{new['id']}")
    assert status_code == 200 and "Latency of support-bot version=2.0" in page

    run(daemon, "alerts")
    alerts = [a for body in hook.wait(1) for a in body["alerts"]]
    split = [a for a in alerts if a["labels"].get("split") == "version=2.0"]
    assert len(split) == 1, alerts
    assert split[0]["labels"]["alertname"] == "LLMLatencyRegression"
    assert split[0]["annotations"]["summary"].startswith(
        "support-bot version=2.0 is slower than its reference")
    assert not [a for a in alerts if a["labels"].get("split") == "version=1.0"]


def test_with_the_split_off_no_segment_is_split(start_daemon: Callable[..., Daemon],
                                                hook: Receiver) -> None:
    daemon = start(start_daemon, hook)
    rollout(daemon)

    found = by_segment(run(daemon, "latency"))

    assert set(found) == {(None, None), ("gpt-4o-mini", None)}
    metrics = get(daemon.ops + "/metrics")[1]
    assert 'split="version' not in metrics
    assert "driftwatch_segment_versions_folded" not in metrics


def test_versions_past_the_bound_fold_into_the_service_and_are_counted(
        start_daemon: Callable[..., Daemon], hook: Receiver) -> None:
    daemon = start(start_daemon, hook, split_by=["service_version"],
                   max_versions_per_service=2)
    rollout(daemon, old_releases=("0.8", "0.9"))

    found = by_segment(run(daemon, "latency"))

    # newest first by their first call in the window: 2.0 (48 min ago) and 1.0 (the baseline
    # is past the window, so 50 min ago) stay; 0.9 and 0.8 (55 min ago) fold
    assert {split for _, split in found} == {None, "version=1.0", "version=2.0"}
    assert found[None, None]["n_current"] == 410  # the whole service keeps every call
    assert daemon.metric("driftwatch_segment_versions_folded") == 2


@pytest.mark.slow
def test_drift_and_toxicity_of_a_release_show_on_its_own_segment(tmp_path: Path) -> None:
    """Release 2.0 brings a new topic of prompts and toxic answers; 1.0 goes on as before.
    The drift and toxicity jobs find both on version=2.0 and neither on version=1.0."""
    config = write_config(tmp_path, jobs={"split_by": ["service_version"]}, **TEXT_DETECTORS)
    env = without_packages(tmp_path / "no-torch", *TORCH_PACKAGES)
    daemon = Daemon(config_path=config, store_path=tmp_path / "driftwatch.db", env=env).start()
    try:
        rng = random.Random(9)
        send_texts(daemon, "1.0", rng, n=300, minutes_ago=(100, 60), new_topic=0.0, toxic=0.0)
        send_texts(daemon, "1.0", rng, n=150, minutes_ago=(50, 1), new_topic=0.0, toxic=0.0)
        send_texts(daemon, "2.0", rng, n=150, minutes_ago=(48, 1), new_topic=0.5, toxic=0.3)
        cli("baseline", "set", "--service", "support-bot", "--from", "-101m", "--to", "-59m",
            "--ops", daemon.ops)

        drift = by_direction(run(daemon, "drift"))
        toxicity = by_direction(run(daemon, "toxicity"))
    finally:
        daemon.stop()

    assert drift["version=2.0", "prompt"]["anomalous"] is True
    assert drift["version=1.0", "prompt"]["anomalous"] is False
    assert drift["version=2.0", "prompt"]["n_current"] == 150
    assert toxicity["version=2.0", "completion"]["anomalous"] is True
    assert toxicity["version=1.0", "completion"]["anomalous"] is False
    assert toxicity["version=2.0", "completion"]["details"]["reference_rate"] == \
        toxicity[None, "completion"]["details"]["reference_rate"]  # the service's reference


TEXT_DETECTORS: dict[str, Any] = {
    "drift": {"enabled": True, "interval": "1h", "permutations": 200, "min_samples": 30,
              "hysteresis": {"k": 1, "m": 1}, "self_check_interval": "1h"},
    "toxicity": {"enabled": True, "interval": "1h", "min_samples": 30},
    "latency": {"interval": "1h"},
}
NEW_TOPIC = "card_payments_refunds"  # a banking77 group absent from the baseline


def send_texts(daemon: Daemon, version: str, rng: random.Random, *, n: int,
               minutes_ago: tuple[float, float], new_topic: float, toxic: float) -> None:
    prompts = rows("banking77")
    usual = [r["text"] for r in prompts if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in prompts if r["group"] == NEW_TOPIC]
    benign = [r["text"][:400] for r in rows("arena_hard_responses")]
    toxic_texts = [r["text"] for r in rows("toxicity")
                   if r["toxic"] and r["dataset"] in ("davidson_hate_offensive", "convabuse")]
    app = LLMApp(otlp_exporter("grpc", daemon.grpc), service="support-bot", version=version)
    now = time.time_ns()
    for i in range(n):
        ago = minutes_ago[0] - (minutes_ago[0] - minutes_ago[1]) * i / n
        app.chat(rng.choice(novel if rng.random() < new_topic else usual),
                 rng.choice(toxic_texts if rng.random() < toxic else benign),
                 start_ns=now - int(ago * MINUTE_NS), duration_s=1.0)
    app.flush()
    app.shutdown()
    assert app.exporter.failures == 0


def by_direction(results: list[dict[str, Any]]) -> dict[tuple[str | None, str], Any]:
    return {(r["split"], r["direction"]): r for r in results
            if r["service"] == "support-bot" and r["model"] is None}


def test_split_settings_are_checked_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    for text, message in (
            ("jobs: {split_by: [colour]}", "jobs.split_by"),
            ("jobs: {split_by: [variant]}", "'variant' needs ingest.variant_attribute"),
            ("jobs: {max_versions_per_service: 0}", "jobs.max_versions_per_service"),
            ("compare: {max_evaluations: 50}", "compare.max_evaluations")):
        config.write_text(text)
        done = cli("validate", str(config), check=False)
        assert done.returncode == 2 and message in done.stderr, (text, done.stderr)
    config.write_text("jobs: {split_by: [variant, service_version]}\n"
                      "ingest: {variant_attribute: prompt.template.version}")
    assert cli("validate", str(config)).returncode == 0
