"""One rule language, two evaluators: the shipped rules, evaluated by the in-process engine on
detector results, and exported (`driftwatch rules export`) to a real Prometheus that reads
the /metrics those same results and calls produce, raise the same alerts, pending and firing,
after every evaluation.

The Prometheus side is promtool's rule unit test: the input series are the daemon's own
exposition (the results' gauges from `SelfMetrics`, the GenAI client histograms from
`GenAiMetrics` fed the calls) scraped once a minute, and the expected alerts are the
engine's, compared through the ALERTS series Prometheus writes; promtool prints both sides
when they differ.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from detectors.latency import BURN_WINDOWS_S, burn_rates
from monitor.alerting.rules_export import export_rules
from monitor.config import Config
from monitor.core.metrics import SelfMetrics
from monitor.core.records import CallStatus, DetectorResult, Direction, LLMCall
from monitor.daemon import DETECTORS
from monitor.ops.cardinality import CardinalityLimits
from monitor.ops.genai_metrics import GenAiMetrics
from monitor.ops.metrics import export_results
from tests.monitor.alerting.receivers import Alerting

S = 10**9
MINUTE_NS = 60 * S
T0_NS = 1_800_000_000 * S  # the wall clock at Prometheus' time 0
EVALUATIONS = 16  # LLMErrorBudgetBurnSlow (for: 15) fires on the 15th
RULES_ON_RESULTS = {"LLMPromptDrift", "LLMCompletionDrift", "LLMToxicityHigh",
                    "LLMLatencyRegression", "LLMErrorBudgetBurn", "LLMErrorBudgetBurnSlow",
                    "LLMTimeToFirstTokenHigh", "LLMTrafficAbsent", "LLMCostRegression",
                    "LLMCostBudgetBurn", "LLMEvaluationDrop", "LLMCanaryRegression"}
ALERTS = ("count by (alertname, alertstate, service, model, split, direction, evaluation, "
          "severity) (ALERTS)")
Alert = tuple[tuple[str, str], ...]  # sorted (label, value) pairs, alertstate included


# -- the world: steady traffic, and what each detector says about it ----------------------------


@dataclass(frozen=True)
class Traffic:
    """One segment's calls each minute, `errors` of them failed."""

    service: str
    model: str
    per_minute: int
    errors: int


TRAFFIC = [Traffic("chat", "gpt-4o", 100, 17),  # 17x the 1% budget: pages, and tickets
           Traffic("search", "small", 100, 4),  # 4x: a slow-burn ticket, no page
           Traffic("docs", "haiku", 200, 1)]  # 0.5x: on budget
# billing sent nothing in its latest window: its traffic is absent

# (service, model, anomalous, ttft p95 s) of each latency segment
LATENCY = [("chat", None, False, 1.0), ("chat", "gpt-4o", True, 3.4),
           ("search", None, None, 2.0), ("search", "small", False, None),
           ("docs", None, False, 3.2), ("docs", "haiku", False, 0.4)]
# From minute 10 on (service, model) -> (anomalous, ttft p95 s): chat/gpt-4o has too few
# calls to compare, so its firing regression stays firing; docs' first tokens are quick
# again, so its alert resolves; search/small regresses, so a new alert goes pending.
LATENCY_LATER = {("chat", "gpt-4o"): (None, 3.4), ("docs", None): (False, 1.1),
                 ("search", "small"): (True, None)}
LATER = 10
# versions split off (`jobs.split_by`): (service, split, anomalous, calls in the window).
# chat's 2.0 regressed; search's 0.9 had no calls in the window, which is no absent traffic
# of search (a service-scoped rule reads the whole service only) and has no burn rates
SPLIT_LATENCY = [("chat", "version=2.0", True, 300), ("search", "version=0.9", False, 0)]
# (service, model, direction, anomalous)
DRIFT = [("chat", None, "prompt", True), ("chat", "gpt-4o", "completion", True),
         ("chat", "gpt-4o", "prompt", False), ("search", None, "prompt", None),
         ("search", None, "completion", False)]
# and of chat's 2.0, whose prompts drifted
SPLIT_DRIFT = [("chat", "version=2.0", "prompt", True)]
# the drift job's second run (minute 16) finds chat's prompts back to their reference
DRIFT_LATER: dict[tuple[str, str | None, str], bool | None] = {("chat", None, "prompt"): False}
# (service, model, anomalous, {budget window: burn}) of each cost segment: chat burns its
# daily budget fast (a page), search slowly (6h and 30m above 6x, a page too), docs has no
# budget; search/small spends more than its reference; chat/gpt-4o has too few priced calls
COST = [("chat", None, False, {"5m": 20.0, "30m": 18.0, "1h": 16.0, "6h": 3.0}),
        ("search", None, False, {"5m": 2.0, "30m": 7.0, "1h": 5.0, "6h": 6.5}),
        ("docs", None, False, {}), ("search", "small", True, {}),
        ("chat", "gpt-4o", None, {})]
# (service, model, direction, anomalous, lower 95% bound of the toxic rate)
TOXICITY = [("chat", "gpt-4o", "completion", False, 0.15),  # surely above 10%
            ("chat", None, "prompt", True, 0.03),  # rose above its reference
            ("search", "small", "completion", None, None),  # too few texts
            ("search", None, "completion", None, 0.12),  # too few to compare, yet surely high
            ("docs", None, "prompt", False, 0.02)]
# (service, model, evaluation name, anomalous): two evaluations of one segment alert apart
EVALUATION = [("chat", "gpt-4o", "relevance", True), ("chat", "gpt-4o", "politeness", True),
              ("chat", None, "relevance", False), ("search", None, "relevance", None)]
# (service, anomalous) of the canary: chat's new version regressed; search's did not;
# docs' new version has too few calls yet
CANARY = [("chat", True), ("search", False), ("docs", None)]


def calls(minute: int) -> list[LLMCall]:
    """The calls that started in the minute before Prometheus' time `minute`."""
    out = []
    for t in TRAFFIC:
        for i in range(t.per_minute):
            failed = i < t.errors
            out.append(LLMCall(
                trace_id=f"{minute:08x}{i:024x}", span_id=f"{i:016x}", parent_span_id=None,
                service=t.service, provider="openai", request_model=t.model,
                response_model=t.model, operation="chat",
                start_ns=T0_NS + (minute - 1) * MINUTE_NS + (i + 1) * MINUTE_NS // t.per_minute,
                duration_s=0.8, status=CallStatus.ERROR if failed else CallStatus.OK,
                error_type="timeout" if failed else None))
    return out


class World:
    """The results every job has stored by each evaluation, computed on the calls so far."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.calls: list[LLMCall] = []
        self._ids = iter(range(1, 10**6))
        self._latest: dict[tuple[str, str | None, str | None, str, str | None, str | None],
                           DetectorResult] = {}

    def advance(self, minute: int) -> list[DetectorResult]:
        """Calls of `minute` arrive and the jobs due run; the latest result per segment."""
        self.calls += calls(minute)
        now_ns = T0_NS + minute * MINUTE_NS
        elapsed_s = (minute - 1) * 60  # the first evaluation is at minute 1
        for detector, interval_s in (("latency", self.config.latency.interval),
                                     ("drift", self.config.drift.interval),
                                     ("toxicity", self.config.toxicity.interval),
                                     ("cost", self.config.cost.interval),
                                     ("evaluation", self.config.evaluation.interval),
                                     ("canary", self.config.canary.interval)):
            if elapsed_s % interval_s == 0:
                for result in getattr(self, detector)(now_ns):
                    key = (result.detector, result.service, result.model,
                           result.direction.value if result.direction else "",
                           result.evaluation, result.split)
                    self._latest[key] = result
        return list(self._latest.values())

    def result(self, detector: str, service: str, model: str | None, direction: str | None,
               anomalous: bool | None, now_ns: int, **details: Any) -> DetectorResult:
        return DetectorResult(
            id=next(self._ids), detector=detector, service=service, model=model,
            direction=Direction(direction) if direction else None,
            window_start_ns=now_ns - 900 * S, window_end_ns=now_ns, n_reference=400,
            n_current=300, statistic=None, p_value=None, anomalous=anomalous,
            summary=f"{detector} of {service}",
            details=DETECTORS[detector].details_from_json(details), computed_ns=now_ns)

    def latency(self, now_ns: int) -> Iterator[DetectorResult]:
        later = now_ns >= T0_NS + LATER * MINUTE_NS
        for service, model, anomalous, ttft in [*LATENCY, ("billing", None, None, None)]:
            if later:
                anomalous, ttft = LATENCY_LATER.get((service, model), (anomalous, ttft))
            mine = [c for c in self.calls
                    if c.service == service and model in (None, c.request_model)]
            starts = np.array([c.start_ns / S for c in mine])
            bad = np.array([c.status is CallStatus.ERROR for c in mine], dtype=bool)
            window = [c for c in mine if c.start_ns > now_ns - self.config.latency.window * S]
            burns = burn_rates(starts, bad, now_s=now_ns / S,
                               objective=self.config.latency.slo.availability)
            yield self.result(
                "latency", service, model, None, anomalous, now_ns, count=len(window),
                rate_per_s=len(window) / self.config.latency.window,
                error_rate=sum(c.status is CallStatus.ERROR for c in window) / len(window)
                if window else None,
                ttft_p95_s=ttft, burn_rates={"availability": {
                    name: rate.burn for name, rate in zip(BURN_WINDOWS_S, burns, strict=True)}})
        for service, split, anomalous, n in SPLIT_LATENCY:
            yield dataclasses.replace(self.result(
                "latency", service, None, None, anomalous, now_ns, count=n,
                rate_per_s=n / self.config.latency.window, error_rate=0.0 if n else None),
                split=split)

    def drift(self, now_ns: int) -> Iterator[DetectorResult]:
        first = now_ns == T0_NS + MINUTE_NS
        for service, model, direction, anomalous in DRIFT:
            if not first:
                anomalous = DRIFT_LATER.get((service, model, direction), anomalous)
            yield self.result("drift", service, model, direction, anomalous, now_ns)
        for service, split, direction, anomalous in SPLIT_DRIFT:
            yield dataclasses.replace(self.result("drift", service, None, direction, anomalous,
                                                  now_ns), split=split)

    def cost(self, now_ns: int) -> Iterator[DetectorResult]:
        for service, model, anomalous, burn in COST:
            yield self.result("cost", service, model, None, anomalous, now_ns,
                              spend_per_hour_usd=12.5, spend_ratio=1.6 if anomalous else 1.0,
                              budget_burn=burn, daily_budget_usd=100.0 if burn else None)
    def evaluation(self, now_ns: int) -> Iterator[DetectorResult]:
        for service, model, name, anomalous in EVALUATION:
            result = self.result("evaluation", service, model, None, anomalous, now_ns,
                                 evaluation=name, pass_rate=0.5, reference_pass_rate=0.9)
            yield dataclasses.replace(result, evaluation=name)

    def toxicity(self, now_ns: int) -> Iterator[DetectorResult]:
        for service, model, direction, anomalous, ci_low in TOXICITY:
            yield self.result("toxicity", service, model, direction, anomalous, now_ns,
                              ci_low=ci_low)


    def canary(self, now_ns: int) -> Iterator[DetectorResult]:
        for service, anomalous in CANARY:
            regressed = ["latency_p95"] if anomalous else []
            yield self.result("canary", service, None, None, anomalous, now_ns,
                              version="2.0", previous_version="1.9", regressed=regressed,
                              measures=[{"measure": "latency_p95", "significant": anomalous,
                                         "worse": anomalous}])


# -- the two evaluators ---------------------------------------------------------------------------


def engine_alerts(tmp_path: Path) -> tuple[Config, list[list[DetectorResult]], list[set[Alert]]]:
    """The results of every evaluation, and the engine's pending and firing alerts after
    each, as (label, value) pairs like Prometheus' ALERTS series."""
    engine = Alerting(tmp_path / "driftwatch.db", {})  # the shipped rules, as configured
    world = World(engine.config)
    results, alerts = [], []
    try:
        for minute in range(1, EVALUATIONS + 1):
            engine.results = world.advance(minute)
            results.append(engine.results)
            out = engine.run(now_ns=T0_NS + minute * MINUTE_NS)
            alerts.append({_alert(a["labels"], a["state"]) for a in out.values()})
    finally:
        engine.close()
    return engine.config, results, alerts


def _alert(labels: dict[str, str], state: str) -> Alert:
    keep = ("alertname", "service", "model", "split", "direction", "evaluation", "severity")
    return tuple(sorted([(k, v) for k, v in labels.items() if k in keep and v]
                        + [("alertstate", state)]))


def scrapes(config: Config, results: list[list[DetectorResult]]) -> list[dict[str, float]]:
    """The daemon's /metrics at Prometheus' times 0..EVALUATIONS minutes: the GenAI client
    histograms of every call so far, and the gauges of the latest results (none at time 0,
    before the first evaluation), by series as Prometheus stores it."""
    latest: list[DetectorResult] = []
    metrics = SelfMetrics()  # one registry, as the daemon's
    export_results(metrics, lambda: latest, lambda: [], DETECTORS)
    genai = GenAiMetrics(metrics.registry, CardinalityLimits())
    out = []
    for minute in range(EVALUATIONS + 1):
        genai.observe(calls(minute))
        latest[:] = results[minute - 1] if minute else []
        out.append(_series(metrics.exposition().decode()))
    return out


def _series(exposition: str) -> dict[str, float]:
    """Samples by series selector, labelled as a scrape of job driftwatch labels them (a
    label with an empty value is no label)."""
    samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if not np.isfinite(sample.value):
                continue
            labels = {k: v for k, v in sample.labels.items() if v}
            labels.update(job="driftwatch", instance="driftwatch:9464")
            matchers = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
            samples[f"{sample.name}{{{matchers}}}"] = sample.value
    return samples


def prometheus_test(rules_file: Path, series: list[dict[str, float]],
                    expected: list[set[Alert]]) -> dict[str, Any]:
    """A promtool unit test: the scraped series, and after each evaluation the alerts
    expected (ALERTS counted by the labels the engine sets)."""
    names = sorted({name for scrape in series for name in scrape})
    input_series = [{"series": name, "values": " ".join(
        _sample(name, scrape, before)
        for before, scrape in zip([{}, *series[:-1]], series, strict=True))}
        for name in names]
    checks = []
    for minute, alerts in enumerate(expected, start=1):
        counted = collections.Counter(alerts)
        checks.append({"expr": ALERTS, "eval_time": f"{minute}m", "exp_samples": [
            {"labels": "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in alert) + "}",
             "value": n} for alert, n in sorted(counted.items())]})
    return {"rule_files": [str(rules_file)], "evaluation_interval": "1m", "tests": [
        {"name": "the engine's alerts", "interval": "1m", "input_series": input_series,
         "promql_expr_test": checks}]}


def _sample(name: str, scrape: dict[str, float], before: dict[str, float]) -> str:
    """A series' sample in one scrape; a series gone since the scrape before is marked
    stale, as a scrape marks it, so that it stops matching at once."""
    if name in scrape:
        return repr(scrape[name])
    return "stale" if name in before else "_"


def promtool_test(tmp_path: Path, test: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install prometheus); CI installs it")
    path = tmp_path / "parity.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run([binary, "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[
        Config, list[dict[str, float]], list[set[Alert]]]:
    config, results, alerts = engine_alerts(tmp_path_factory.mktemp("engine"))
    return config, scrapes(config, results), alerts


def test_the_engine_and_prometheus_raise_the_same_alerts_from_the_same_results(
        evaluated: tuple[Config, list[dict[str, float]], list[set[Alert]]],
        tmp_path: Path) -> None:
    config, series, alerts = evaluated
    fired = {dict(a)["alertname"] for after in alerts for a in after
             if ("alertstate", "firing") in a}
    assert fired == RULES_ON_RESULTS, "the scenario fires every shipped rule on results"
    docs_ttft = (("alertname", "LLMTimeToFirstTokenHigh"), ("alertstate", "firing"),
                 ("service", "docs"), ("severity", "ticket"))
    assert docs_ttft in alerts[LATER - 2] and docs_ttft not in alerts[-1], "and resolves"
    kept = (("alertname", "LLMLatencyRegression"), ("alertstate", "firing"), ("model", "gpt-4o"),
            ("service", "chat"), ("severity", "ticket"))
    assert kept in alerts[-1], "too little data keeps a firing alert"
    version = (("alertname", "LLMLatencyRegression"), ("alertstate", "firing"),
               ("service", "chat"), ("severity", "ticket"), ("split", "version=2.0"))
    assert version in alerts[-1], "a version split off alerts as its own segment"
    assert not [a for a in alerts[-1] if ("split", "version=0.9") in a], \
        "a quiet version is no absent traffic of its service"
    rules = tmp_path / "driftwatch.rules.yml"
    rules.write_text(export_rules(config, DETECTORS))
    tested = promtool_test(tmp_path, prometheus_test(rules, series, alerts))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_an_export_that_drifted_from_the_engine_is_caught(
        evaluated: tuple[Config, list[dict[str, float]], list[set[Alert]]],
        tmp_path: Path) -> None:
    config, series, alerts = evaluated
    drifted = Config.model_validate({"store": {"path": str(tmp_path / "d.db")}, "alerts": {
        "rules": {"LLMTimeToFirstTokenHigh": {"when": "ttft_p95_s > 3.3"}}}})
    assert export_rules(drifted, DETECTORS) != export_rules(config, DETECTORS)
    rules = tmp_path / "drifted.rules.yml"
    rules.write_text(export_rules(drifted, DETECTORS))
    tested = promtool_test(tmp_path, prometheus_test(rules, series, alerts))
    assert tested.returncode != 0
    assert 'alertname="LLMTimeToFirstTokenHigh"' in tested.stdout + tested.stderr
    assert 'service="docs"' in tested.stdout + tested.stderr, "docs' p95 of 3.2s is between"
