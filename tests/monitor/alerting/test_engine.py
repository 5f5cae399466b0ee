"""Alert rules and their state machine, in-process on a real store file: what fires when,
what `for` counts, what survives a restart, and the config that shapes the rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.alerting.engine import JobStatus, fingerprint, render
from monitor.config import load_config
from monitor.core.errors import ConfigError
from tests.monitor.alerting.receivers import Alerting, receiving, result

S = 10**9
ONLY = ["LLMLatencyRegression", "LLMErrorBudgetBurn", "LLMTrafficAbsent", "DriftwatchJobStale",
        "DriftwatchRefusingSpans", "DriftwatchDetectorsBehind", "LLMPromptDrift",
        "LLMToxicityHigh", "DriftwatchDiskFilling"]


def only(*names: str, **overrides: Any) -> dict[str, Any]:
    """Rules: the named shipped ones (with overrides), every other turned off."""
    rules: dict[str, Any] = {name: False for name in load_config(None, environ={}).alerts.rules}
    for name in names:
        rules[name] = overrides.get(name, {})
    return {"rules": rules}


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[Alerting]:
    world = Alerting(tmp_path / "driftwatch.db", only(*ONLY))
    yield world
    world.close()


def test_for_counts_evaluations_that_see_a_new_result(alerting: Alerting) -> None:
    slow = result(p95_s=3.0, p95_ratio=2.0)
    alerting.results = [slow]
    first = alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]
    assert first["state"] == "pending"
    assert alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]["state"] == \
        "pending", "the same result seen again does not count twice"

    alerting.results = [result(p95_s=3.1, p95_ratio=2.1)]
    fired = alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]
    assert fired["state"] == "firing"
    assert fired["active_at"] == first["active_at"]
    assert fired["starts_at"] > fired["active_at"], "startsAt is when it fired"
    assert fired["annotations"]["summary"] == \
        "chat/gpt-4o is slower than its reference: p95 3.10s, x2.10"


def test_insufficient_data_keeps_the_state_and_no_longer_anomalous_resolves(
        alerting: Alerting) -> None:
    alerting.results = [result()]
    alerting.run()
    alerting.results = [result()]
    assert alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]["state"] == "firing"

    alerting.results = [result(anomalous=None)]
    assert alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]["state"] == \
        "firing", "too little data is not 'no regression'"

    alerting.results = [result(anomalous=False)]
    assert alerting.run() == {}
    [resolved] = alerting.alerts().values()
    assert resolved.state == "resolved" and resolved.resolved_ns


def test_a_pending_alert_that_stops_holding_is_dropped_unsent(tmp_path: Path) -> None:
    with receiving() as hook:
        world = Alerting(tmp_path / "d.db", {**only("LLMLatencyRegression"),
                                             "notifiers": {"webhook": [{"url": hook.url}]}})
        try:
            world.results = [result()]
            assert world.run()["LLMLatencyRegression model=gpt-4o,service=chat"]["state"] == \
                "pending"
            world.results = [result(anomalous=False)]
            world.run()
            assert world.alerts() == {}
            assert hook.requests == []
        finally:
            world.close()


def test_a_firing_alert_survives_a_restart_with_its_start_time(alerting: Alerting) -> None:
    alerting.results = [result()]
    alerting.run()
    alerting.results = [result()]
    before = alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]

    alerting.restart()
    after = alerting.run()["LLMLatencyRegression model=gpt-4o,service=chat"]
    assert after["state"] == "firing"
    assert (after["starts_at"], after["fingerprint"]) == (before["starts_at"],
                                                          before["fingerprint"])


def test_a_stale_result_holds_nothing(alerting: Alerting) -> None:
    alerting.results = [result(), result(model=None)]
    alerting.run()
    alerting.results = [result(), result(model=None)]
    assert len(alerting.run()) == 2
    long_ago = time.time_ns() - 4 * 3600 * S  # latency runs every minute
    alerting.results = [result(computed_ns=long_ago), result(model=None)]
    assert list(alerting.run()) == ["LLMLatencyRegression service=chat"]


WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def burn(**windows: float | None) -> dict[str, Any]:
    return {"availability": {w: windows.get(f"w{w}", 0.5) for w in WINDOWS},
            "latency": {w: 0.1 for w in WINDOWS}}


def test_error_budget_burn_pages_when_both_windows_burn(tmp_path: Path) -> None:
    world = Alerting(tmp_path / "d.db", only("LLMErrorBudgetBurn",
                                             LLMErrorBudgetBurn={"for": 1}))
    try:
        fast = burn(w1h=15.0, w5m=20.0)
        world.results = [result(model=None, anomalous=False, burn_rates=fast, error_rate=0.2,
                                count=500),
                         result(anomalous=False, burn_rates=fast)]  # per model: scope service
        fired = world.run()
        assert list(fired) == ["LLMErrorBudgetBurn service=chat,slo=availability"]
        alert = fired["LLMErrorBudgetBurn service=chat,slo=availability"]
        assert alert["labels"] == {"alertname": "LLMErrorBudgetBurn", "severity": "page",
                                   "slo": "availability", "service": "chat"}
        assert "15.0x over 1h and 20.0x over 5m" in alert["annotations"]["description"]
        assert "SLO 99.00%" in alert["annotations"]["description"]
        assert alert["value"] == 15.0

        world.results = [result(model=None, anomalous=False, burn_rates=burn(w1h=15.0, w5m=2))]
        assert world.run() == {}, "a burst that already stopped (5m window) does not page"

        world.results = [result(model=None, anomalous=False, burn_rates=burn(w6h=7, w30m=8))]
        assert list(world.run()) == ["LLMErrorBudgetBurn service=chat,slo=availability"]
    finally:
        world.close()


def test_a_slow_burn_is_a_ticket_over_1d_and_2h_or_over_3d_and_6h(tmp_path: Path) -> None:
    world = Alerting(tmp_path / "d.db", only("LLMErrorBudgetBurnSlow",
                                             LLMErrorBudgetBurnSlow={"for": 1}))
    name = "LLMErrorBudgetBurnSlow service=chat,slo=availability"

    def run(**windows: float | None) -> dict[str, dict[str, Any]]:
        world.results = [result(model=None, anomalous=False, burn_rates=burn(**windows))]
        return world.run()

    try:
        assert run(w6h=4, w30m=4) == {}, "6h and 30m alone no longer stand in"
        ticket = run(w1d=4, w2h=5)[name]
        assert ticket["labels"]["severity"] == "ticket"
        assert ticket["annotations"]["description"].startswith(
            "Error-budget burn 4.0x over 1d and 5.0x over 2h, 0.5x over 3d and 0.5x over 6h "
            "(availability SLO 99.00%")
        assert run(w3d=1.5, w6h=2)[name]["state"] == "firing", "a budget spent over 3 days"
        assert run(w1d=4, w2h=0.5) == {}, "the short window says the burn stopped"
        assert run(w3d=None, w6h=2) == {}, \
            "a 3d window the retention cannot hold is unknown, not a burn"
    finally:
        world.close()


def test_traffic_absent_on_a_service_whose_window_is_empty(alerting: Alerting) -> None:
    alerting.results = [result(model=None, anomalous=None, count=0, rate_per_s=0.0)]
    assert alerting.run()["LLMTrafficAbsent service=chat"]["state"] == "pending"
    alerting.results = [result(model=None, anomalous=None, count=0, rate_per_s=0.0)]
    absent = alerting.run()["LLMTrafficAbsent service=chat"]
    assert absent["state"] == "firing"
    assert absent["annotations"]["summary"] == "chat sent no LLM calls in the last 15m"
    old = time.time_ns() - 12 * 3600 * S
    alerting.results = [result(model=None, anomalous=None, count=0, rate_per_s=0.0,
                               computed_ns=old)]
    assert "LLMTrafficAbsent service=chat" in alerting.run(), "still absent after 6h"
    alerting.results = [result(model=None, anomalous=None, count=12, rate_per_s=0.01)]
    assert "LLMTrafficAbsent service=chat" not in alerting.run()


def test_a_job_without_success_for_three_intervals_and_refused_spans(
        alerting: Alerting) -> None:
    now = time.time()
    alerting.jobs = {
        "latency": JobStatus(interval_s=60, last_success_s=now - 200, since_s=now - 900),
        "drift": JobStatus(interval_s=900, last_success_s=None, since_s=now - 900),
        "alerts": JobStatus(interval_s=60, last_success_s=None, since_s=now - 900)}
    alerting.refused = 40
    fired = alerting.run()
    assert set(fired) == {"DriftwatchJobStale job=latency", "DriftwatchRefusingSpans"}
    stale = fired["DriftwatchJobStale job=latency"]
    assert stale["annotations"]["summary"].startswith("driftwatch job latency has not "
                                                      "succeeded for 20")
    assert "runs every 60s" in stale["annotations"]["description"]
    assert fired["DriftwatchRefusingSpans"]["annotations"]["summary"] == \
        "driftwatch refused 40 spans since the last evaluation"

    alerting.jobs["latency"] = JobStatus(interval_s=60, last_success_s=now, since_s=now - 900)
    assert alerting.run() == {}, "no new refusals and a fresh success: both resolve"


def test_a_job_whose_last_run_took_most_of_its_interval_is_falling_behind(
        alerting: Alerting) -> None:
    now = time.time()
    alerting.jobs = {
        "toxicity": JobStatus(interval_s=300, last_success_s=now, since_s=now - 900,
                              last_duration_s=270),
        "drift": JobStatus(interval_s=900, last_success_s=now, since_s=now - 900,
                           last_duration_s=60),
        "latency": JobStatus(interval_s=60, last_success_s=now, since_s=now - 900)}
    fired = alerting.run()
    assert set(fired) == {"DriftwatchDetectorsBehind job=toxicity"}
    behind = fired["DriftwatchDetectorsBehind job=toxicity"]["annotations"]
    assert behind["summary"] == ("driftwatch job toxicity is falling behind: its last run "
                                 "took 90% of its interval")
    assert "last run took 270s" in behind["description"]

    alerting.jobs["toxicity"] = JobStatus(interval_s=300, last_success_s=now,
                                          since_s=now - 900, last_duration_s=40)
    assert alerting.run() == {}


def test_a_filling_disk_tickets_before_ingest_stops_and_resolves_when_freed(
        alerting: Alerting) -> None:
    min_free = alerting.config.store.min_free_bytes  # 32 MiB: ingest stops below it
    alerting.free_bytes = 5 * min_free
    assert alerting.run() == {}
    alerting.free_bytes = 3 * min_free  # under 4x: pending, then firing (for: 2)
    alerting.run()
    fired = alerting.run()
    assert fired["DriftwatchDiskFilling"]["state"] == "firing"
    assert fired["DriftwatchDiskFilling"]["annotations"]["summary"] == \
        f"driftwatch's store has {3 * min_free:,} bytes free"
    alerting.free_bytes = None  # the filesystem cannot be asked: the alert keeps its state
    assert "DriftwatchDiskFilling" in alerting.run()
    alerting.free_bytes = 8 * min_free
    assert alerting.run() == {}


def test_an_alert_quotes_examples_through_the_configured_redaction(tmp_path: Path) -> None:
    world = Alerting(tmp_path / "driftwatch.db", only(*ONLY), redaction={
        "kinds": ["email"],  # IPs left as they are
        "patterns": [{"name": "employee", "regex": r"EMP-\d{6}", "placeholder": "[EMP]"}]})
    try:
        clusters = [{"keywords": ["refund"], "share_reference": 0.02, "share_current": 0.31,
                     "examples": ["badge EMP-004217 from 203.0.113.45, ann.lee@example.com"]}]
        world.results = [result("drift", model=None, direction="prompt", clusters=clusters,
                                summary="drift in prompts of chat")]
        alert = world.run()["LLMPromptDrift direction=prompt,service=chat"]
        explanation = alert["annotations"]["explanation"]
        assert "badge [EMP] from 203.0.113.45, [EMAIL]" in explanation
    finally:
        world.close()


def test_drift_alert_says_what_moved_with_redacted_examples(alerting: Alerting) -> None:
    clusters = [{"keywords": ["refund", "card", "charge"], "share_reference": 0.02,
                 "share_current": 0.31,
                 "examples": ["Refund my card, write to ann.lee@example.com",
                              "why was I charged twice"]}]
    alerting.results = [result("drift", model=None, direction="prompt", clusters=clusters,
                               reference="pinned baseline X to Y",
                               summary="drift in prompts of chat")]
    alert = alerting.run()["LLMPromptDrift direction=prompt,service=chat"]
    assert alert["labels"]["direction"] == "prompt"
    explanation = alert["annotations"]["explanation"]
    assert explanation.startswith("(refund, card, charge) 2% -> 31% of texts:")
    assert "[EMAIL]" in explanation and "example.com" not in explanation
    assert alert["annotations"]["summary"] == "Prompts to chat drifted from their reference"
    assert alert["annotations"]["description"].startswith("drift in prompts of chat. "
                                                          "Reference: pinned baseline X to Y")


def test_toxicity_fires_on_a_rise_or_a_surely_high_rate(alerting: Alerting) -> None:
    alerting.results = [
        result("toxicity", direction="completion", anomalous=False, toxic_rate=0.2,
               ci_low=0.15, ci_high=0.26, reference_rate=0.18,
               top_examples=[{"score": 0.97, "text": "you idiot, call 555-123-4567"}]),
        result("toxicity", direction="prompt", anomalous=True, toxic_rate=0.05, ci_low=0.03,
               ci_high=0.08, reference_rate=0.01),
        result("toxicity", model=None, direction="prompt", anomalous=False, toxic_rate=0.02,
               ci_low=0.01, ci_high=0.04)]
    fired = alerting.run()
    assert set(fired) == {"LLMToxicityHigh direction=completion,model=gpt-4o,service=chat",
                          "LLMToxicityHigh direction=prompt,model=gpt-4o,service=chat"}
    answers = fired["LLMToxicityHigh direction=completion,model=gpt-4o,service=chat"]
    assert answers["annotations"]["summary"] == "completions of chat/gpt-4o are 20.0% toxic"
    assert answers["annotations"]["examples"] == '0.97: "you idiot, call [PHONE]"'


def test_templates_show_missing_values_as_na_and_never_reach_attributes() -> None:
    values = {"p95_s": None, "summary": "s", "burn_rates": {"availability": {"1h": 2.5}}}
    assert render("{p95_s:.2f}s {nothing} {burn_rates[availability][1h]:.1f}x", values) == \
        "n/as n/a 2.5x"
    assert render("{burn_rates.availability.1h}", values) == "2.5"
    assert render("{summary.__class__}", values) == "n/a"
    assert render("{unbalanced", values) == "{unbalanced"


def test_fingerprint_is_alertmanagers() -> None:
    # Alertmanager 0.25 listed this label set with this fingerprint.
    labels = {"alertname": "LLMErrorBudgetBurn", "service": "chat", "severity": "page",
              "slo": "llm-availability"}
    assert fingerprint(labels) == "f2fd3e90a5280aa5"
    assert fingerprint(dict(reversed(labels.items()))) == "f2fd3e90a5280aa5"


def test_alert_gauges_and_evaluations_are_exported(alerting: Alerting) -> None:
    alerting.results = [result(), result(model=None)]
    alerting.run()
    text = alerting.metrics.exposition().decode()
    assert ('driftwatch_alerts{alertname="LLMLatencyRegression",severity="ticket",'
            'state="pending"} 2.0') in text
    assert ('driftwatch_alerts{alertname="LLMErrorBudgetBurn",severity="page",'
            'state="firing"} 0.0') in text
    assert "driftwatch_alert_evaluations_total 1.0" in text


# -- config -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_rules_can_be_tuned_turned_off_and_added_by_name(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
alerts:
  rules:
    LLMTimeToFirstTokenHigh: {when: "ttft_p95_s > 1.5", annotations: {runbook_url: "https://r"}}
    LLMTrafficAbsent: false
    LLMErrorBudgetBurn: {severity: ticket}
    ChatCostly:
      detector: latency
      when: [["tokens_per_call > 2000", "count >= 50"]]
      for: 3
      labels: {team: chat}
"""), environ={"DRIFTWATCH_ALERTS__RULES__DRIFTWATCHJOBSTALE__ENABLED": "false"})
    rules = config.alerts.rules
    ttft = rules["LLMTimeToFirstTokenHigh"]
    assert ttft.when == (("ttft_p95_s > 1.5",),) and ttft.for_ == 5
    assert ttft.annotations["runbook_url"] == "https://r"
    assert "summary" in ttft.annotations, "annotations merge key by key"
    assert rules["LLMTrafficAbsent"].enabled is False
    assert rules["DriftwatchJobStale"].enabled is False
    assert rules["LLMErrorBudgetBurn"].severity == "ticket"
    assert rules["LLMErrorBudgetBurn"].labels == {"slo": "availability"}
    assert rules["ChatCostly"].when == (("tokens_per_call > 2000", "count >= 50"),)


@pytest.mark.parametrize("text, message", [
    ("alerts: {rules: {LLMTrafficAbsent: {treshold: 2}}}",
     "alerts.rules.LLMTrafficAbsent.treshold: unknown key"),
    ("alerts: {rules: {LLMTimeToFirstTokenHigh: {when: 'ttft_p95_s >> 3'}}}",
     "alerts.rules.LLMTimeToFirstTokenHigh.when.0.0: expected a check like"),
    ("alerts: {rules: {Mine: {when: anomalous}}}",
     "alerts.rules.Mine: detector: required for a detector rule"),
    ("alerts: {rules: {Mine: {detector: drift, when: anomalous, labels: {service: x}}}}",
     "labels: service is set by driftwatch"),
    ("alerts: {rules: {my-rule: {detector: drift, when: anomalous}}}",
     "alerts: rules: a rule name is its alertname"),
    ("alerts: {notifiers: {pagerduty: [{url: 'https://events.pagerduty.com/v2/enqueue'}]}}",
     "alerts.notifiers.pagerduty.0: set routing_key or routing_key_file"),
    ("alerts: {notifiers: {slack: [{url: 'hooks.slack.com/x'}]}}",
     "alerts.notifiers.slack.0.url: String should match pattern"),
    ("alerts: {resend_delay: 0}", "alerts.resend_delay"),
])
def test_bad_alert_config_names_its_path(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ={})
    assert message in str(err.value)
