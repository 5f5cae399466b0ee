"""Alert rules on the latest detector results and on the daemon itself, and the state
machine of their alerts: inactive -> pending -> firing -> resolved.

Every evaluation (the `alerts` job) observes each rule once per segment (and direction, or
job): the condition holds, does not, or is unknown (a detector answered "insufficient
data"). An instance whose condition held on `for` consecutive evaluations fires; one that
stops holding resolves at once (a pending one is dropped, never sent); an unknown one stays
as it is, since too little data is not "no drift". A detector evaluation counts toward
`for` only when it sees a new result, so `for: 2` on the latency rule means two latency
runs. Results older than three runs of their job are stale and hold nothing.

State is kept in the store (`monitor.store.alert_state`); after each evaluation the dispatcher
delivers what each notifier is owed (`monitor.alerting.notifiers`).
"""

from __future__ import annotations

import logging
import string
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from detectors.redaction.redactor import Redactor
from monitor.alerting.config import AlertsConfig, RuleConfig
from monitor.alerting.notifiers import Dispatcher
from monitor.alerting.rules import AlertRule, Detectors, evaluate, fields, lookup
from monitor.config import Config
from monitor.core.metrics import SelfMetrics
from monitor.core.records import DetectorResult, rfc3339
from monitor.ops.reports import report_path
from monitor.store.alert_state import AlertRecord, SqliteAlertState

log = logging.getLogger(__name__)

STALE_RUNS = 3  # a result older than this many runs of its job is stale
MAX_UNDELIVERED_S = 86400.0  # a resolved alert no notifier could take is dropped after this
ALERTS_JOB = "alerts"
DASHBOARDS = {"drift": "driftwatch-quality", "toxicity": "driftwatch-quality",
              "latency": "driftwatch-overview", "cost": "driftwatch-overview",
              "traffic_absent": "driftwatch-overview", "canary": "driftwatch-overview",
              "job_stale": "driftwatch-daemon", "job_behind": "driftwatch-daemon",
              "spans_refused": "driftwatch-daemon", "disk_filling": "driftwatch-daemon"}


# -- what one evaluation looks at ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    interval_s: float
    last_success_s: float | None  # unix time; None = not since the daemon started
    since_s: float  # when the daemon's schedule started
    last_duration_s: float | None = None  # how long its last run took; None: not yet run


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    now_ns: int
    results: Sequence[DetectorResult]
    jobs: Mapping[str, JobStatus]
    refused: float  # spans refused since the previous evaluation
    free_bytes: float | None = None  # free on the store's filesystem; None: unknown


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Where the engine reads its inputs."""

    results: Callable[[], Sequence[DetectorResult]]
    jobs: Callable[[], Mapping[str, JobStatus]]
    refused_total: Callable[[], float]
    free_bytes: Callable[[], float | None] = lambda: None


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """A rule's condition on one segment (or job) at one evaluation."""

    labels: dict[str, str]  # service, model, direction or job
    holds: bool | None  # None: unknown, the alert keeps its state
    key: str  # evaluations with the same key count once toward `for`
    values: dict[str, Any]  # the annotation templates' namespace
    value: float | None = None
    source_interval_s: float = 60.0
    extra: dict[str, str] = field(default_factory=dict)  # annotations built in code


# -- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleContext:
    """What rules need from the rest of the config."""

    detector_intervals: Mapping[str, float]
    detectors: Detectors  # the daemon's table: how each detector's results are read
    redact: Callable[[str], str]  # the configured redaction of texts alerts quote
    evaluation_interval_s: float
    slo_availability: float
    latency_window_s: float
    min_free_bytes: int = 0  # store.min_free_bytes: ingest stops below it


class Rule:
    """A configured rule, compiled: its parsed form (`monitor.alerting.rules`) and its
    kind's observer."""

    def __init__(self, name: str, config: RuleConfig, context: RuleContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.model = AlertRule.from_config(name, config)
        self._observe = {"detector": self._results, "traffic_absent": self._results,
                         "job_stale": self._job_stale, "job_behind": self._job_behind,
                         "spans_refused": self._spans_refused,
                         "disk_filling": self._disk_filling}[config.kind]

    @property
    def severity(self) -> str:
        return self.model.severity

    def observe(self, inputs: Inputs) -> list[Observation]:
        return self._observe(inputs)

    def _results(self, inputs: Inputs) -> list[Observation]:
        rule = self.model
        interval = rule.source_interval_s(self.context.detector_intervals,
                                          self.context.evaluation_interval_s)
        horizon_ns = int((STALE_RUNS * interval + self.context.evaluation_interval_s) * 1e9)
        observations = []
        for result in (r for r in inputs.results if rule.selects(r)):
            verdict = evaluate(rule.condition, fields(result, self.context.detectors))
            holds = verdict.holds
            # A stale result says nothing: its segment went quiet or its job stopped. An
            # absent-traffic result stays true however old, until traffic returns.
            if rule.kind == "detector" and inputs.now_ns - result.computed_ns > horizon_ns:
                holds = False
            value = verdict.value
            if value is None and result.statistic is not None and rule.kind == "detector":
                value = result.statistic
            values = self._namespace(result)
            values.update(value=value, threshold=verdict.threshold)
            observations.append(Observation(
                labels=_segment_labels(result), holds=holds, key=f"result:{result.id}",
                values=values, value=value, source_interval_s=interval,
                extra=self._explanation(result)))
        return observations

    def _job_stale(self, inputs: Inputs) -> list[Observation]:
        now_s = inputs.now_ns / 1e9
        observations = []
        for job, status in sorted(inputs.jobs.items()):
            if job == ALERTS_JOB:
                continue  # this very evaluation proves it runs
            since = status.last_success_s or status.since_s
            age = now_s - since
            last = (rfc3339(int(status.last_success_s * 1e9)) if status.last_success_s
                    else f"never since the daemon started at {rfc3339(int(since * 1e9))}")
            observations.append(Observation(
                labels={"job": job}, holds=age > self.model.stale_after * status.interval_s,
                key=f"eval:{inputs.now_ns}", value=age,
                values={"job": job, "value": age, "interval": status.interval_s,
                        "last_success": last, "threshold": self.model.stale_after},
                source_interval_s=self.context.evaluation_interval_s))
        return observations

    def _job_behind(self, inputs: Inputs) -> list[Observation]:
        """A job whose last run took most of its interval: the next runs start late and its
        results go stale soon (embedding detectors on more traffic than the CPU keeps up)."""
        observations = []
        for job, status in sorted(inputs.jobs.items()):
            if status.last_duration_s is None:
                continue
            share = status.last_duration_s / status.interval_s
            observations.append(Observation(
                labels={"job": job}, holds=share > self.model.busy_share,
                key=f"eval:{inputs.now_ns}", value=share,
                values={"job": job, "value": share, "interval": status.interval_s,
                        "duration": status.last_duration_s,
                        "threshold": self.model.busy_share},
                source_interval_s=self.context.evaluation_interval_s))
        return observations

    def _spans_refused(self, inputs: Inputs) -> list[Observation]:
        return [Observation(
            labels={}, holds=inputs.refused > 0, key=f"eval:{inputs.now_ns}",
            value=inputs.refused, values={"value": inputs.refused, "threshold": 0},
            source_interval_s=self.context.evaluation_interval_s)]

    def _disk_filling(self, inputs: Inputs) -> list[Observation]:
        threshold = self.model.free_below * self.context.min_free_bytes
        free = inputs.free_bytes
        return [Observation(
            labels={}, holds=None if free is None else free < threshold,
            key=f"eval:{inputs.now_ns}", value=free,
            values={"value": free, "threshold": threshold,
                    "min_free_bytes": self.context.min_free_bytes},
            source_interval_s=self.context.evaluation_interval_s)]

    def _explanation(self, result: DetectorResult) -> dict[str, str]:
        """What changed, for people (the clusters that moved, the most toxic texts): the
        detector's own explanation, its texts redacted and cut short."""
        plugin = self.context.detectors.get(result.detector)
        return plugin.explanation(result, self.context.redact) if plugin else {}

    def _namespace(self, result: DetectorResult) -> dict[str, Any]:
        """What annotation templates read: the fields checks read, the segment, and the
        result's presentation."""
        namespace = {
            **result.details.to_json(),
            **fields(result, self.context.detectors),
            **_segment_labels(result),
            "model": result.model or "all models",
            "segment": result.segment.label,
            "detector": result.detector,
            "summary": result.summary,
            "window_start": rfc3339(result.window_start_ns),
            "window_end": rfc3339(result.window_end_ns),
            "slo_availability": self.context.slo_availability,
            "report_path": report_path(result),
        }
        if self.model.kind == "traffic_absent":
            namespace["window"] = _duration(self.context.latency_window_s)
        return namespace


def rules_from_config(config: Config, detectors: Detectors,
                      redact: Callable[[str], str] | None = None) -> list[Rule]:
    """The enabled rules, compiled; `detectors` reads the results (the daemon's table)."""
    context = RuleContext(
        detector_intervals={name: plugin.section(config).interval
                            for name, plugin in detectors.items()},
        detectors=detectors,
        redact=redact or Redactor.from_config(config.redaction),
        evaluation_interval_s=config.alerts.evaluation_interval,
        slo_availability=config.latency.slo.availability,
        latency_window_s=config.latency.window,
        min_free_bytes=config.store.min_free_bytes)
    return [Rule(name, rule, context) for name, rule in config.alerts.rules.items()
            if rule.enabled]


def _segment_labels(result: DetectorResult) -> dict[str, str]:
    labels = {"service": result.service}
    if result.model:
        labels["model"] = result.model
    if result.split:
        labels["split"] = result.split
    if result.direction:
        labels["direction"] = result.direction.value
    if result.evaluation:
        labels["evaluation"] = result.evaluation
    return labels



def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class _Template(string.Formatter):
    """str.format over observation values; a missing or None value reads "n/a", a value a
    format spec cannot take is shown plain, and attributes are never looked up."""

    def get_field(self, field_name: str, args: Sequence[Any],
                  kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        return lookup(kwargs, field_name), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return "n/a"
        try:
            return str(super().format_field(value, format_spec))
        except (ValueError, TypeError):
            return str(value)


_TEMPLATE = _Template()


def render(template: str, values: Mapping[str, Any]) -> str:
    try:
        return " ".join(_TEMPLATE.vformat(template, (), dict(values)).split())
    except (ValueError, IndexError):  # unbalanced braces: show the template as written
        return template


# -- fingerprints -----------------------------------------------------------------------------


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values,
    0xff between each), so the webhook shows the fingerprint Alertmanager would."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# -- the engine -------------------------------------------------------------------------------


class AlertEngine:
    """Evaluates the rules, moves each alert through its states, stores them, and kicks the
    dispatcher. `run` is the `alerts` job."""

    def __init__(self, config: AlertsConfig, rules: Sequence[Rule], state: SqliteAlertState,
                 sources: Sources, metrics: SelfMetrics, dispatcher: Dispatcher,
                 external_url: Callable[[], str]) -> None:
        self._config = config
        self.rules = list(rules)
        self.state = state
        self._sources = sources
        self._metrics = metrics
        self.dispatcher = dispatcher
        self._external_url = external_url
        self._refused_seen = sources.refused_total()
        metrics.alerts(lambda: [(a.alertname, a.state, a.labels.get("severity", ""))
                                for a in state.alerts()],
                       [(rule.name, rule.severity) for rule in self.rules])

    def run(self, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Evaluate now, kick the deliveries (they finish in the background) and return the
        alerts that are pending or firing."""
        now = now_ns or time.time_ns()
        refused = self._sources.refused_total()
        inputs = Inputs(now_ns=now, results=self._sources.results(),
                        jobs=self._sources.jobs(), refused=refused - self._refused_seen,
                        free_bytes=self._sources.free_bytes())
        self._refused_seen = refused
        alerts = self.evaluate(inputs)
        self._metrics.alert_evaluations.inc()
        self.dispatcher.kick(now)
        return [a.to_json() for a in alerts if a.state != "resolved"]

    def evaluate(self, inputs: Inputs) -> list[AlertRecord]:
        """One evaluation of every rule; returns every alert kept afterwards."""
        now = inputs.now_ns
        existing = {a.fingerprint: a for a in self.state.alerts()}
        kept: dict[str, AlertRecord] = {}
        for rule in self.rules:
            for obs in rule.observe(inputs):
                labels = {**rule.model.labels, **obs.labels, "alertname": rule.name,
                          "severity": rule.severity}
                fp = fingerprint(labels)
                if fp in kept:
                    continue  # one instance per label set, whatever a rule observes
                alert = self._step(existing.get(fp), rule, obs, labels, fp, now)
                if alert is not None:
                    kept[fp] = alert
        for fp, old in existing.items():
            if fp not in kept:  # its rule was turned off or its segment is gone
                alert = _resolve(old, now)
                if alert is not None:
                    kept[fp] = alert
        deliveries = self.state.deliveries()
        retention_ns = int(self._config.resolved_retention * 1e9)
        for fp, alert in list(kept.items()):
            if alert.state == "resolved" and alert.resolved_ns is not None:
                age = now - alert.resolved_ns
                if ((age > retention_ns and not self.dispatcher.owes(alert, deliveries, now))
                        or age > MAX_UNDELIVERED_S * 1e9):
                    del kept[fp]
        self.state.save(list(kept.values()), [fp for fp in existing if fp not in kept])
        for now_kept in kept.values():
            before = existing.get(now_kept.fingerprint)
            if before is None or before.state != now_kept.state:
                log.info("alert %s %s %s", now_kept.alertname, now_kept.state,
                         {k: v for k, v in now_kept.labels.items()
                          if k not in ("alertname", "severity")})
        return sorted(kept.values(), key=lambda a: (a.alertname, sorted(a.labels.items())))

    def _step(self, old: AlertRecord | None, rule: Rule, obs: Observation,
              labels: dict[str, str], fp: str, now: int) -> AlertRecord | None:
        if obs.holds is None:  # unknown: keep the alert as it is
            return replace(old, updated_ns=now) if old else None
        if not obs.holds:
            return _resolve(old, now) if old else None
        annotations = self._annotate(rule, obs)
        if old is None or old.state == "resolved":
            firing = rule.model.for_ <= 1
            return AlertRecord(
                fingerprint=fp, rule=rule.name, labels=labels, annotations=annotations,
                state="firing" if firing else "pending", active_ns=now,
                fired_ns=now if firing else None, holds=1, observed=obs.key, value=obs.value,
                source_interval_s=obs.source_interval_s, updated_ns=now)
        if old.state == "pending":
            holds = old.holds + (obs.key != old.observed)
            firing = holds >= rule.model.for_
            return replace(old, labels=labels, annotations=annotations, holds=holds,
                           state="firing" if firing else "pending",
                           fired_ns=now if firing else None, observed=obs.key,
                           value=obs.value, source_interval_s=obs.source_interval_s,
                           updated_ns=now)
        return replace(old, labels=labels, annotations=annotations, observed=obs.key,
                       value=obs.value, source_interval_s=obs.source_interval_s,
                       updated_ns=now)

    def _annotate(self, rule: Rule, obs: Observation) -> dict[str, str]:
        values = {**obs.values, "alertname": rule.name}
        annotations = {key: render(text, values)
                       for key, text in rule.model.annotations.items()}
        annotations.update(obs.extra)
        report = obs.values.get("report_path")
        if report:
            annotations["report_url"] = self._external_url().rstrip("/") + str(report)
        config = self._config
        if config.runbook_url and "runbook_url" not in annotations:
            annotations["runbook_url"] = render(config.runbook_url, values)
        if config.grafana_url and "dashboard_url" not in annotations:
            annotations["dashboard_url"] = dashboard_url(
                config.grafana_url, DASHBOARDS.get(dashboard_key(rule.model),
                                                   "driftwatch-overview"), obs.labels)
        return {k: v for k, v in annotations.items() if v}


def _resolve(old: AlertRecord, now: int) -> AlertRecord | None:
    if old.state == "pending":
        return None  # never fired, never sent: forget it
    if old.state == "firing":
        return replace(old, state="resolved", resolved_ns=now, updated_ns=now)
    return old


def dashboard_key(rule: AlertRule) -> str:
    """The DASHBOARDS key of a rule: its detector, or its kind for the other rules."""
    return rule.detector if rule.kind == "detector" and rule.detector else rule.kind


def dashboard_url(grafana_url: str, uid: str, labels: Mapping[str, str]) -> str:
    query = {f"var-{k}": labels[k] for k in ("service", "model", "direction") if k in labels}
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"{grafana_url.rstrip('/')}/d/{uid}{suffix}"
