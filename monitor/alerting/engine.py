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
import math
import re
import string
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from monitor.alerting.config import AlertsConfig, RuleConfig, parse_check
from monitor.alerting.notifiers import Dispatcher
from monitor.config import Config
from monitor.core.metrics import SelfMetrics
from monitor.core.records import DetectorResult, rfc3339
from monitor.jobs.plugin import DetectorPlugin, FieldValue
from monitor.ops.reports import report_path
from monitor.store.alert_state import AlertRecord, SqliteAlertState

log = logging.getLogger(__name__)

STALE_RUNS = 3  # a result older than this many runs of its job is stale
MAX_UNDELIVERED_S = 86400.0  # a resolved alert no notifier could take is dropped after this
ALERTS_JOB = "alerts"
DASHBOARDS = {"drift": "driftwatch-quality", "toxicity": "driftwatch-quality",
              "latency": "driftwatch-overview", "traffic_absent": "driftwatch-overview",
              "job_stale": "driftwatch-daemon", "spans_refused": "driftwatch-daemon"}
_OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
        "==": float.__eq__, "!=": float.__ne__}


# -- what one evaluation looks at ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStatus:
    interval_s: float
    last_success_s: float | None  # unix time; None = not since the daemon started
    since_s: float  # when the daemon's schedule started


@dataclass(frozen=True, slots=True, kw_only=True)
class Inputs:
    now_ns: int
    results: Sequence[DetectorResult]
    jobs: Mapping[str, JobStatus]
    refused: float  # spans refused since the previous evaluation


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Where the engine reads its inputs."""

    results: Callable[[], Sequence[DetectorResult]]
    jobs: Callable[[], Mapping[str, JobStatus]]
    refused_total: Callable[[], float]


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
    detectors: Mapping[str, DetectorPlugin[Any, Any]]  # the daemon's table
    evaluation_interval_s: float
    slo_availability: float
    latency_window_s: float


class Rule:
    """A configured rule, compiled: its checks parsed, its kind's observer chosen."""

    def __init__(self, name: str, config: RuleConfig, context: RuleContext) -> None:
        self.name = name
        self.config = config
        self.context = context
        self.groups = [[parse_check(check) for check in group] for group in config.when]
        self._observe = {"detector": self._detector, "traffic_absent": self._traffic_absent,
                         "job_stale": self._job_stale,
                         "spans_refused": self._spans_refused}[config.kind]

    @property
    def severity(self) -> str:
        return self.config.severity

    def observe(self, inputs: Inputs) -> list[Observation]:
        return self._observe(inputs)

    def _segments(self, inputs: Inputs, detector: str) -> list[DetectorResult]:
        cfg = self.config
        return [r for r in inputs.results if r.detector == detector
                and (cfg.direction is None or (r.direction and r.direction.value == cfg.direction))
                and not (cfg.scope == "service" and r.model is not None)
                and not (cfg.scope == "model" and r.model is None)]

    def _detector(self, inputs: Inputs) -> list[Observation]:
        assert self.config.detector is not None
        interval = self.context.detector_intervals.get(self.config.detector, 3600.0)
        horizon_ns = int((STALE_RUNS * interval + self.context.evaluation_interval_s) * 1e9)
        observations = []
        for result in self._segments(inputs, self.config.detector):
            values = self._namespace(result)
            holds, value, threshold = evaluate(self.groups, self._fields(result))
            if inputs.now_ns - result.computed_ns > horizon_ns:
                holds = False  # the segment went quiet or the job stopped: nothing to say
            if value is None and result.statistic is not None:
                value = result.statistic
            values.update(value=value, threshold=threshold)
            observations.append(Observation(
                labels=_segment_labels(result), holds=holds, key=f"result:{result.id}",
                values=values, value=value, source_interval_s=interval,
                extra=self._explanation(result)))
        return observations

    def _traffic_absent(self, inputs: Inputs) -> list[Observation]:
        # The latency job reports every segment with calls in the last 3d, with the count
        # of its current window: a zero is a segment that went quiet. Its last result stays
        # (however old) until traffic returns or retention drops it.
        interval = self.context.detector_intervals.get("latency", 60.0)
        observations = []
        for result in self._segments(inputs, "latency"):
            count = self._fields(result).get("count")
            values = self._namespace(result)
            values.update(value=count, threshold=0,
                          window=_duration(self.context.latency_window_s))
            observations.append(Observation(
                labels=_segment_labels(result), holds=count == 0, key=f"result:{result.id}",
                values=values, value=None if count is None else float(count),
                source_interval_s=interval))
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
                labels={"job": job}, holds=age > self.config.stale_after * status.interval_s,
                key=f"eval:{inputs.now_ns}", value=age,
                values={"job": job, "value": age, "interval": status.interval_s,
                        "last_success": last, "threshold": self.config.stale_after},
                source_interval_s=self.context.evaluation_interval_s))
        return observations

    def _spans_refused(self, inputs: Inputs) -> list[Observation]:
        return [Observation(
            labels={}, holds=inputs.refused > 0, key=f"eval:{inputs.now_ns}",
            value=inputs.refused, values={"value": inputs.refused, "threshold": 0},
            source_interval_s=self.context.evaluation_interval_s)]

    def _fields(self, result: DetectorResult) -> dict[str, FieldValue]:
        """What a rule's checks read on a result: its detector's rule fields, by dotted
        name, and whether it is anomalous and its sample sizes."""
        plugin = self.context.detectors.get(result.detector)
        fields = plugin.rule_fields(result) if plugin else {}
        return {**fields, "anomalous": result.anomalous, "n_current": result.n_current,
                "n_reference": result.n_reference}

    def _explanation(self, result: DetectorResult) -> dict[str, str]:
        """What changed, for people (the clusters that moved, the most toxic texts)."""
        plugin = self.context.detectors.get(result.detector)
        return plugin.explanation(result) if plugin else {}

    def _namespace(self, result: DetectorResult) -> dict[str, Any]:
        """What annotation templates read: every key of the result's details, as JSON."""
        labels = _segment_labels(result)
        return {
            **result.details.to_json(),
            **labels,
            "model": result.model or "all models",
            "segment": result.segment.label,
            "detector": result.detector,
            "summary": result.summary,
            "anomalous": result.anomalous,
            "statistic": result.statistic,
            "p_value": result.p_value,
            "n_current": result.n_current,
            "n_reference": result.n_reference,
            "window_start": rfc3339(result.window_start_ns),
            "window_end": rfc3339(result.window_end_ns),
            "slo_availability": self.context.slo_availability,
            "report_path": report_path(result),
        }


def rules_from_config(config: Config,
                      detectors: Mapping[str, DetectorPlugin[Any, Any]]) -> list[Rule]:
    """The enabled rules, compiled; `detectors` reads the results (the daemon's table)."""
    context = RuleContext(
        detector_intervals={name: plugin.section(config).interval
                            for name, plugin in detectors.items()},
        detectors=detectors,
        evaluation_interval_s=config.alerts.evaluation_interval,
        slo_availability=config.latency.slo.availability,
        latency_window_s=config.latency.window)
    return [Rule(name, rule, context) for name, rule in config.alerts.rules.items()
            if rule.enabled]


def evaluate(groups: Sequence[Sequence[tuple[str, str | None, float | None]]],
             values: Mapping[str, Any]) -> tuple[bool | None, float | None, float | None]:
    """(holds, value, threshold) of a condition: any group whose checks all hold. A check on
    `anomalous` that is None (insufficient data) makes its group unknown; a missing or
    non-numeric value fails its check. `value` and `threshold` are those of the first
    comparison in the group that held, else in the first group."""
    outcome: bool | None = False
    shown: tuple[float | None, float | None] | None = None
    for group in groups:
        held: bool | None = True
        first: tuple[float | None, float | None] | None = None
        for name, op, number in group:
            found = lookup(values, name)
            if op is None:
                check = None if found is None and name == "anomalous" else bool(found)
            else:
                number_value = _number(found)
                if first is None:
                    first = (number_value, number)
                check = number_value is not None and _OPS[op](number_value, float(number or 0))
            if check is False:
                held = False
            elif check is None and held is True:
                held = None
        shown = shown or first
        if held is True:
            return True, *(first or (None, None))
        if held is None:
            outcome = None
    return outcome, *(shown or (None, None))


def lookup(values: Mapping[str, Any], path: str) -> Any:
    """A value by its key (a rule field's dotted name), else by dotted path or [key] index,
    through dicts and lists only (never attributes): `burn_rates.availability.1h`,
    `burn_rates[availability][1h]`."""
    if path in values:
        return values[path]
    node: Any = values
    for key in (k for k in re.split(r"[.\[\]]+", path) if k):
        if isinstance(node, Mapping):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _segment_labels(result: DetectorResult) -> dict[str, str]:
    labels = {"service": result.service}
    if result.model:
        labels["model"] = result.model
    if result.direction:
        labels["direction"] = result.direction.value
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
                        jobs=self._sources.jobs(), refused=refused - self._refused_seen)
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
                labels = {**rule.config.labels, **obs.labels, "alertname": rule.name,
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
            firing = rule.config.for_ <= 1
            return AlertRecord(
                fingerprint=fp, rule=rule.name, labels=labels, annotations=annotations,
                state="firing" if firing else "pending", active_ns=now,
                fired_ns=now if firing else None, holds=1, observed=obs.key, value=obs.value,
                source_interval_s=obs.source_interval_s, updated_ns=now)
        if old.state == "pending":
            holds = old.holds + (obs.key != old.observed)
            firing = holds >= rule.config.for_
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
                       for key, text in rule.config.annotations.items()}
        annotations.update(obs.extra)
        report = obs.values.get("report_path")
        if report:
            annotations["report_url"] = self._external_url().rstrip("/") + str(report)
        config = self._config
        if config.runbook_url and "runbook_url" not in annotations:
            annotations["runbook_url"] = render(config.runbook_url, values)
        if config.grafana_url and "dashboard_url" not in annotations:
            annotations["dashboard_url"] = dashboard_url(
                config.grafana_url, DASHBOARDS.get(rule.config.detector or rule.config.kind,
                                                   "driftwatch-overview"), obs.labels)
        return {k: v for k, v in annotations.items() if v}


def _resolve(old: AlertRecord, now: int) -> AlertRecord | None:
    if old.state == "pending":
        return None  # never fired, never sent: forget it
    if old.state == "firing":
        return replace(old, state="resolved", resolved_ns=now, updated_ns=now)
    return old


def dashboard_url(grafana_url: str, uid: str, labels: Mapping[str, str]) -> str:
    query = {f"var-{k}": labels[k] for k in ("service", "model", "direction") if k in labels}
    suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
    return f"{grafana_url.rstrip('/')}/d/{uid}{suffix}"
