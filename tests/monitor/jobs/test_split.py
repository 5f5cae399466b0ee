"""Segments split by version on the real daemon, fed through the real OpenTelemetry SDK.

support-bot ran release 1.0 through a pinned baseline; in the last 50 minutes release 2.0
rolls out beside it and its calls take twice as long. With `jobs.split_by:
[service_version]` each release is a latency segment of its own, measured against the
service's baseline: 2.0 regressed and 1.0 did not, in `status --json` (its `split`), on
/metrics (a `split` label) and in the LLMLatencyRegression alert, which names the release.
With the split off nothing of it appears; past `jobs.max_versions_per_service` the older
releases fold into the service's segment and are counted.
"""

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
from tests.harness import Daemon, cli, get
from tests.monitor.alerting.receivers import Receiver, receiving

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
