"""Notifiers against loopback receivers: the documented payloads for a webhook
(Alertmanager's v4), Slack and PagerDuty, firing then resolved; retries on 429 and 5xx only;
Alertmanager's resend contract; and a hanging receiver never holds up an evaluation."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.alerting.config import NotifiersConfig
from monitor.alerting.notifiers import (
    AlertmanagerNotifier,
    NotificationSender,
    PagerDutyNotifier,
)
from monitor.config import load_config
from monitor.core.errors import ConfigError
from monitor.core.metrics import SelfMetrics
from monitor.store.alert_state import AlertRecord, Delivery
from tests.monitor.alerting.receivers import (
    EXTERNAL_URL,
    Alerting,
    Answer,
    Receiver,
    receiving,
    result,
)

RETRY = {"attempts": 3, "backoff": "50ms", "max_backoff": "5s", "timeout": "5s"}
S = 10**9


def rules() -> dict[str, Any]:
    names = load_config(None, environ={}).alerts.rules
    return {**{name: False for name in names}, "LLMLatencyRegression": {"for": 1},
            "LLMErrorBudgetBurn": {"for": 1}}


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiving() as receiver:
        yield receiver


def alerting(tmp_path: Path, **notifiers: Any) -> Alerting:
    return Alerting(tmp_path / "d.db", {"rules": rules(),
                                        "notifiers": {**notifiers, "retry": RETRY}})


def fire_then_resolve(world: Alerting, *, models: tuple[str, ...] = ("gpt-4o",)) -> None:
    world.results = [result(model=m, p95_s=3.0, p95_ratio=2.0) for m in models]
    world.run()
    world.results = [result(model=m, anomalous=False) for m in models]
    world.run()


def test_webhook_gets_alertmanagers_v4_json_firing_then_resolved(
        tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, webhook=[{"url": hook.url + "/hook"}])
    try:
        fire_then_resolve(world)
        firing, resolved = hook.wait(2)
    finally:
        world.close()
    assert [r.path for r in hook.requests] == ["/hook", "/hook"]
    assert hook.requests[0].headers["Content-Type"] == "application/json"
    assert hook.requests[0].headers["User-Agent"].startswith("driftwatch/")
    assert set(firing) == {"receiver", "status", "alerts", "groupLabels", "commonLabels",
                           "commonAnnotations", "externalURL", "version", "groupKey",
                           "truncatedAlerts"}
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert firing["groupLabels"] == {"alertname": "LLMLatencyRegression", "service": "chat"}
    assert firing["groupKey"] == '{}:{alertname="LLMLatencyRegression", service="chat"}'
    assert firing["commonLabels"] == {"alertname": "LLMLatencyRegression", "service": "chat",
                                      "model": "gpt-4o", "severity": "ticket"}
    assert firing["externalURL"] == EXTERNAL_URL and firing["truncatedAlerts"] == 0
    [alert] = firing["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt",
                          "generatorURL", "fingerprint"}
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == f"{EXTERNAL_URL}/api/v1/alerts?alertname=" \
                                    "LLMLatencyRegression"
    assert alert["annotations"]["summary"] == firing["commonAnnotations"]["summary"]
    assert resolved["status"] == "resolved"
    [gone] = resolved["alerts"]
    assert gone["status"] == "resolved" and gone["endsAt"] > gone["startsAt"]
    assert (gone["fingerprint"], gone["startsAt"]) == (alert["fingerprint"], alert["startsAt"])


def test_webhook_max_alerts_counts_what_it_left_out(tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, webhook=[{"url": hook.url, "max_alerts": 1}])
    try:
        world.results = [result(model=m) for m in ("a", "b", "c")]
        world.run()
        [message] = hook.wait(1)
    finally:
        world.close()
    assert len(message["alerts"]) == 1 and message["truncatedAlerts"] == 2
    assert message["commonLabels"] == {"alertname": "LLMLatencyRegression", "service": "chat",
                                       "severity": "ticket"}


def test_slack_says_firing_then_resolved(tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, slack=[{"url": hook.url + "/services/T0/B0/x"}])
    try:
        fire_then_resolve(world)
        firing, resolved = hook.wait(2)
    finally:
        world.close()
    assert firing["text"].startswith("[FIRING:1] LLMLatencyRegression chat – chat/gpt-4o is "
                                     "slower than its reference")
    assert firing["blocks"][0]["text"]["text"] == "*[FIRING:1] LLMLatencyRegression chat*"
    assert any("model=gpt-4o" in b.get("text", {}).get("text", "") for b in firing["blocks"])
    assert resolved["text"].startswith("[RESOLVED] LLMLatencyRegression chat")


def test_slack_resolves_can_be_turned_off(tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, slack=[{"url": hook.url, "send_resolved": False}])
    try:
        fire_then_resolve(world)
        hook.wait(1)
        world.run()
    finally:
        world.close()
    assert len(hook.requests) == 1


def test_pagerduty_trigger_then_resolve_share_a_stable_dedup_key(
        tmp_path: Path, hook: Receiver) -> None:
    key_file = tmp_path / "pd-key"
    key_file.write_text("R0UT1NGKEY0123456789012345678901\n")
    hook.answer(default=Answer(202, body=b'{"status":"success","dedup_key":"x"}'))
    world = alerting(tmp_path, pagerduty=[{"routing_key_file": str(key_file),
                                           "url": hook.url + "/v2/enqueue"}])
    try:
        world.results = [result(model=None, anomalous=False, error_rate=0.2, count=100,
                                burn_rates={"availability": {"5m": 20, "30m": 1, "1h": 15,
                                                             "6h": 1}})]
        world.run()
        world.results = [result(model=None, anomalous=False, burn_rates={})]
        world.run()
        trigger, resolve = hook.wait(2)
        fingerprint = next(iter(world.state.alerts())).fingerprint
    finally:
        world.close()
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == "R0UT1NGKEY0123456789012345678901"
    assert trigger["dedup_key"] == hashlib.sha256(
        f"driftwatch/{fingerprint}".encode()).hexdigest()
    payload = trigger["payload"]
    assert payload["severity"] == "critical" and payload["class"] == "LLMErrorBudgetBurn"
    assert payload["source"] == "driftwatch/chat" and payload["group"] == "chat"
    assert payload["summary"] == "[page] chat is burning its availability error budget"
    assert payload["custom_details"]["labels"]["slo"] == "availability"
    assert trigger["client"] == "driftwatch"
    assert resolve == {"routing_key": trigger["routing_key"], "dedup_key": trigger["dedup_key"],
                       "event_action": "resolve"}


def test_a_503_then_200_delivers_once(tmp_path: Path) -> None:
    with receiving(Answer(503)) as hook:
        world = alerting(tmp_path, webhook=[{"url": hook.url}])
        try:
            world.results = [result()]
            world.run()
            world.run()  # nothing new is owed
            text = world.metrics.exposition().decode()
        finally:
            world.close()
    assert len(hook.requests) == 2
    assert hook.requests[0].body == hook.requests[1].body
    assert 'driftwatch_notifications_total{notifier="webhook",outcome="sent"} 1.0' in text
    assert 'driftwatch_notifications_total{notifier="webhook",outcome="failed"} 0.0' in text


def test_a_400_is_not_retried_nor_sent_again(tmp_path: Path) -> None:
    with receiving(default=Answer(400, body=b"invalid_payload")) as hook:
        world = alerting(tmp_path, slack=[{"url": hook.url}])
        try:
            world.results = [result()]
            world.run()
            world.run()
            deliveries = list(world.state.deliveries().values())
        finally:
            world.close()
    assert len(hook.requests) == 1
    [delivery] = deliveries
    assert (delivery.state, delivery.outcome) == ("firing", "rejected")


def test_a_429_waits_for_retry_after(tmp_path: Path) -> None:
    with receiving(Answer(429, headers={"Retry-After": "1"}, body=b"rate_limited")) as hook:
        world = alerting(tmp_path, slack=[{"url": hook.url}])
        try:
            world.results = [result()]
            world.run()
        finally:
            world.close()
    first, second = hook.requests
    assert second.at - first.at >= 1.0


def test_a_receiver_that_stays_down_is_retried_next_evaluation(tmp_path: Path) -> None:
    with receiving(default=Answer(502)) as hook:
        world = alerting(tmp_path, webhook=[{"url": hook.url}])
        try:
            world.results = [result()]
            world.run()
            assert len(hook.requests) == 3  # every attempt
            hook.answer(default=Answer(200))
            world.run()
            world.run()
            text = world.metrics.exposition().decode()
        finally:
            world.close()
    assert len(hook.requests) == 4
    assert 'driftwatch_notifications_total{notifier="webhook",outcome="failed"} 1.0' in text


def test_a_hanging_receiver_never_holds_up_an_evaluation(tmp_path: Path) -> None:
    with receiving(default=Answer(200, delay_s=2.0)) as slow, receiving() as fast:
        world = alerting(tmp_path, webhook=[{"url": slow.url}, {"url": fast.url}])
        try:
            world.results = [result()]
            began = time.monotonic()
            world.run(wait=False)
            assert time.monotonic() - began < 1.0
            fast.wait(1, timeout=1.5)  # the other notifier is not held up either
            world.settle()
        finally:
            world.close()
    assert len(slow.requests) == 1


# -- reminders: Alertmanager's repeat_interval for the direct notifiers ---------------------


def tick(world: Alerting, at_ns: int, *, firing: bool = True) -> None:
    """An evaluation at `at_ns` on a latency result computed then, slow or not."""
    world.results = [result(computed_ns=at_ns, p95_s=3.0, p95_ratio=2.0) if firing
                     else result(computed_ns=at_ns, anomalous=False)]
    world.run(at_ns)


def test_a_firing_alert_is_repeated_to_the_webhook_until_it_resolves(
        tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, webhook=[{"url": hook.url, "repeat_interval": "1h"}])
    t0 = time.time_ns()
    try:
        for minutes in (0, 30, 59, 60, 90, 120):
            tick(world, t0 + minutes * 60 * S)
        tick(world, t0 + 150 * 60 * S, firing=False)
        tick(world, t0 + 300 * 60 * S, firing=False)
    finally:
        world.close()
    first, second, third, resolved = hook.bodies()
    assert [m["status"] for m in (first, second, third, resolved)] == \
        ["firing", "firing", "firing", "resolved"]
    assert second["alerts"][0]["fingerprint"] == first["alerts"][0]["fingerprint"]
    assert second["alerts"][0]["startsAt"] == first["alerts"][0]["startsAt"], \
        "a reminder is the same alert, not a new one"


def test_slack_is_reminded_on_schedule_across_a_restart(tmp_path: Path,
                                                        hook: Receiver) -> None:
    world = alerting(tmp_path, slack=[{"url": hook.url, "repeat_interval": "4h"}])
    t0 = time.time_ns()
    try:
        tick(world, t0)
        world.restart()
        tick(world, t0 + 60 * S)
        tick(world, t0 + (4 * 60 - 1) * 60 * S)
        assert len(hook.requests) == 1, "a restart does not bring the reminder forward"
        tick(world, t0 + 4 * 3600 * S)
    finally:
        world.close()
    first, reminder = hook.bodies()
    assert first["text"].startswith("[FIRING:1] LLMLatencyRegression chat")
    assert reminder["text"] == first["text"]


def test_a_repeat_interval_of_0_never_repeats(tmp_path: Path, hook: Receiver) -> None:
    world = alerting(tmp_path, webhook=[{"url": hook.url, "repeat_interval": 0}],
                     slack=[{"url": hook.url + "/slack", "repeat_interval": "0s"}])
    t0 = time.time_ns()
    try:
        for hours in (0, 4, 8, 24):
            tick(world, t0 + hours * 3600 * S)
    finally:
        world.close()
    assert sorted(r.path for r in hook.requests) == ["/", "/slack"]


def test_webhook_and_slack_repeat_every_4h_and_pagerduty_not_by_default() -> None:
    targets = NotifiersConfig.model_validate({
        "webhook": [{"url": "http://hook"}], "slack": [{"url": "http://slack"}],
        "pagerduty": [{"routing_key": "k"}, {"routing_key": "k", "repeat_interval": "1h"}]})
    assert targets.webhook[0].repeat_interval == targets.slack[0].repeat_interval == 4 * 3600
    sender = NotificationSender("pagerduty", targets.retry, SelfMetrics(), threading.Event(),
                        name="pd")
    quiet, repeating = (PagerDutyNotifier(pd, sender, lambda: EXTERNAL_URL)
                        for pd in targets.pagerduty)
    firing = alert("firing", fired_ns=100 * S)
    assert not quiet.due(firing, sent("firing", 100 * S), 100 * S + 30 * 86400 * S)
    assert not repeating.due(firing, sent("firing", 100 * S), 100 * S + 3500 * S)
    assert repeating.due(firing, sent("firing", 100 * S), 100 * S + 3600 * S), \
        "a trigger again under the same dedup_key"
    rejected = Delivery(fingerprint="f", notifier="pd", state="firing", outcome="rejected",
                        sent_ns=100 * S)
    assert not repeating.due(firing, rejected, 100 * S + 86400 * S), \
        "a receiver that refused the alert is not asked again"


@pytest.mark.parametrize("value", ["30s", 4, -1])
def test_a_repeat_interval_under_a_minute_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.notifiers\.slack\.0\.repeat_interval: "
                                          r"expected 0 \(never repeat\) or at least 1m"):
        load_config(None, environ={"DRIFTWATCH_ALERTS__NOTIFIERS__SLACK": json.dumps(
            [{"url": "http://slack", "repeat_interval": value}])})


# -- Alertmanager's resend contract (Prometheus' rules/alerting.go) -------------------------


def am() -> AlertmanagerNotifier:
    """Resend every 1m, resolves for 15m (the defaults)."""
    config = load_config(None, environ={"DRIFTWATCH_ALERTS__NOTIFIERS__ALERTMANAGER":
                                        '[{"url": "http://am:9093"}]'}).alerts
    sender = NotificationSender("alertmanager", config.notifiers.retry, SelfMetrics(),
                        threading.Event(), name="am")
    return AlertmanagerNotifier(config.notifiers.alertmanager[0], config, sender,
                                lambda: EXTERNAL_URL)


def alert(state: str, **times: int) -> AlertRecord:
    return AlertRecord(fingerprint="f", rule="R", labels={"alertname": "R"},
                       annotations={}, state=state, active_ns=0,  # type: ignore[arg-type]
                       source_interval_s=3600.0, **times)


def sent(state: str, at: int) -> Delivery:
    return Delivery(fingerprint="f", notifier="am", state=state,  # type: ignore[arg-type]
                    outcome="sent", sent_ns=at)


def test_alertmanager_is_resent_firing_alerts_and_resolves_like_prometheus() -> None:
    notifier = am()
    firing = alert("firing", fired_ns=100 * S)
    assert not notifier.due(alert("pending"), None, 100 * S), "never send pending"
    assert notifier.due(firing, None, 100 * S)
    assert not notifier.due(firing, sent("firing", 100 * S), 130 * S)
    assert notifier.due(firing, sent("firing", 100 * S), 160 * S)
    assert notifier.due(firing, sent("firing", 100 * S), 159_500_000_000), "1s of slack"
    payload = notifier.payload(firing, 160 * S)
    # endsAt = now + 4 x max(source interval 1h, resend delay 1m)
    assert payload["endsAt"] == "1970-01-01T04:02:40.000000Z"
    assert payload["startsAt"] == "1970-01-01T00:01:40.000000Z"
    assert notifier.url == "http://am:9093/api/v2/alerts"

    resolved = alert("resolved", fired_ns=100 * S, resolved_ns=200 * S)
    assert notifier.due(resolved, sent("firing", 190 * S), 200 * S), "a resolve goes at once"
    assert not notifier.due(resolved, sent("resolved", 200 * S), 230 * S)
    assert notifier.due(resolved, sent("resolved", 200 * S), 260 * S), "and again"
    assert not notifier.due(resolved, sent("resolved", 1000 * S), 1101 * S), \
        "for 15 minutes only"
    assert notifier.payload(resolved, 260 * S)["endsAt"] == "1970-01-01T00:03:20.000000Z"
