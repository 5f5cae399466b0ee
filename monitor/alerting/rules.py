"""The alert rule language, parsed once, and its one meaning read two ways: by the in-process
engine on detector results and, written as PromQL, by Prometheus on the gauges the daemon
exports from the same results.

A rule on results (`kind: detector`, and `traffic_absent`, which is a fixed condition on
latency results) is an `AlertRule`: which results it reads (detector, direction, scope), a
condition (any group whose checks all hold), `for`, severity, labels and annotations.
Everything both back-ends must agree on is defined here beside each other: which results a
rule selects and the matchers that select the same series; the fields a check reads from a
result (`fields`) and the metric that carries each field (`promql_field`); what a check
means and how it is written; and `for` (evaluations that see a new result) as a duration.
The engine (`monitor.alerting.engine`) and the export (`monitor.alerting.rules_export`) only
consume it, and a test (tests/monitor/alerting/test_rule_parity.py) holds them together.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.alerting.config import RuleConfig
    from monitor.core.records import DetectorResult
    from monitor.jobs.plugin import DetectorPlugin

_CHECK = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:(>=|<=|==|!=|>|<)\s*"
                    r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?\s*$")
_OPS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
        "==": float.__eq__, "!=": float.__ne__}
RESULT_KINDS = ("detector", "traffic_absent")


Detectors = Mapping[str, "DetectorPlugin[Any, Any]"]  # the daemon's table of detectors


@dataclass(frozen=True, slots=True)
class Check:
    """`field op number`, or a bare `field` (op and number None) that must be true."""

    field: str
    op: str | None = None
    number: float | None = None


Condition = tuple[tuple[Check, ...], ...]  # holds when every check of any one group holds

#: traffic_absent: the segment's latest latency window saw no calls
TRAFFIC_ABSENT: Condition = ((Check("rate_per_s", "==", 0.0),),)


def parse_check(text: str) -> Check:
    """:raises ValueError: naming the check."""
    match = _CHECK.match(text)
    if not match:
        raise ValueError(f"expected a check like 'ttft_p95_s > 3' or 'anomalous', got: {text!r}")
    field, op, number = match.groups()
    return Check(field, op, None if number is None else float(number))


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    """A configured rule, parsed: the form both back-ends read."""

    name: str
    kind: str
    detector: str | None  # the results it reads; latency for traffic_absent
    direction: str | None  # None: both
    scope: str  # any, service (whole services only) or model (per-model only)
    condition: Condition
    for_: int  # consecutive evaluations that see a new result
    severity: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    stale_after: float  # job_stale: job intervals without success
    free_below: float  # disk_filling: multiples of store.min_free_bytes
    busy_share: float = 0.8  # job_behind: last run time over interval that fires it

    @classmethod
    def from_config(cls, name: str, config: RuleConfig) -> AlertRule:
        condition = tuple(tuple(parse_check(c) for c in group) for group in config.when)
        detector = config.detector
        if config.kind == "traffic_absent":
            detector, condition = "latency", TRAFFIC_ABSENT
        return cls(name=name, kind=config.kind, detector=detector, direction=config.direction,
                   scope=config.scope, condition=condition, for_=config.for_,
                   severity=config.severity, labels=dict(config.labels),
                   annotations=dict(config.annotations), stale_after=config.stale_after,
                   busy_share=config.busy_share, free_below=config.free_below)

    @property
    def on_results(self) -> bool:
        return self.kind in RESULT_KINDS

    def selects(self, result: DetectorResult) -> bool:
        """Whether this rule reads `result` (the engine's side of `scope_matchers`)."""
        return (result.detector == self.detector
                and (self.direction is None
                     or (result.direction is not None
                         and result.direction.value == self.direction))
                and not (self.scope == "service"
                         and (result.model is not None or result.split is not None))
                and not (self.scope == "model" and result.model is None))

    def scope_matchers(self) -> tuple[str, ...]:
        """PromQL matchers selecting the series of the results `selects` takes; a whole
        service's series carry model="" and split="" (a version split off is not the
        service)."""
        matchers = []
        if self.direction:
            matchers.append(f'direction="{self.direction}"')
        if self.scope == "service":
            matchers.extend(('model=""', 'split=""'))
        elif self.scope == "model":
            matchers.append('model!=""')
        return tuple(matchers)

    def source_interval_s(self, detector_intervals: Mapping[str, float],
                          evaluation_interval_s: float) -> float:
        """How often what the rule reads changes: its detector job's interval, or the
        evaluation's for rules on the daemon itself."""
        if self.detector is None:
            return evaluation_interval_s
        return detector_intervals[self.detector]

    def for_seconds(self, source_interval_s: float) -> float:
        """`for` as Prometheus' duration: the first evaluation that holds makes the alert
        pending, and each later one sees the next run of the source job, so it fires after
        (for - 1) intervals."""
        return (self.for_ - 1) * source_interval_s


# -- the engine's reading ---------------------------------------------------------------------


def fields(result: DetectorResult, detectors: Detectors) -> dict[str, Any]:
    """The values a check reads on a result: its detector's rule fields by dotted name
    (`toxic_rate`, `burn_rates.availability.1h`; `DetectorPlugin.rule_fields`) and the
    measures every result has. The one place a result's fields are read; `promql_field`
    names the metric that carries each of them."""
    plugin = detectors.get(result.detector)
    own: dict[str, Any] = (plugin.rule_fields(result) if plugin is not None else
                           {**result.details.to_json(), "statistic": result.statistic,
                            "p_value": result.p_value})
    return {**own, "anomalous": result.anomalous, "n_current": result.n_current,
            "n_reference": result.n_reference}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A condition on one result: `holds` is None when unknown (an `anomalous` check on
    insufficient data); `value` and `threshold` are those of the first comparison of the
    group that held, else of the first group."""

    holds: bool | None
    value: float | None = None
    threshold: float | None = None


def evaluate(condition: Condition, values: Mapping[str, Any]) -> Verdict:
    """Any group whose checks all hold. A check on `anomalous` that is None makes its group
    unknown (too little data is not "no drift"); a missing or non-numeric value fails its
    check, as a missing series matches nothing in PromQL."""
    outcome: bool | None = False
    shown: tuple[float | None, float | None] | None = None
    for group in condition:
        held: bool | None = True
        first: tuple[float | None, float | None] | None = None
        for check in group:
            found = lookup(values, check.field)
            if check.op is None:
                ok = None if found is None and check.field == "anomalous" else bool(found)
            else:
                number = _number(found)
                if first is None:
                    first = (number, check.number)
                ok = number is not None and _OPS[check.op](number, float(check.number or 0))
            if ok is False:
                held = False
            elif ok is None and held is True:
                held = None
        shown = shown or first
        if held is True:
            return Verdict(True, *(first or (None, None)))
        if held is None:
            outcome = None
    return Verdict(outcome, *(shown or (None, None)))


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


# -- the PromQL reading -----------------------------------------------------------------------


class NotExportable(ValueError):
    """A rule checks something no exported metric carries."""


@dataclass(frozen=True, slots=True)
class Series:
    """The gauge that carries a field: its name, fixed matchers, and the labels besides the
    segment's that `and` between checks must ignore."""

    metric: str
    matchers: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()


BURN = re.compile(r"^burn_rates\.(\w+)\.(\w+)$")
_SAMPLES = {"n_current": "current", "n_reference": "reference"}


def promql_field(detector: str, field: str, detectors: Detectors) -> Series:
    """The exported gauge that carries `field` of a `detector` result (as `fields` reads
    it): the families every detector shares (`anomalous` is 1 or 0, and absent on
    insufficient data; the sample sizes), else the detector's own gauges
    (`DetectorPlugin.promql_field`).

    :raises NotExportable: naming the field.
    """
    if field == "anomalous":
        return Series("driftwatch_detector_anomalous", (f'detector="{detector}"',),
                      ("detector",))
    if field in _SAMPLES:
        return Series("driftwatch_detector_samples",
                      (f'detector="{detector}"', f'window="{_SAMPLES[field]}"'),
                      ("detector", "window"))
    plugin = detectors.get(detector)
    own = plugin.promql_field(field) if plugin is not None else None
    if own is None:
        raise NotExportable(f"no exported metric carries {detector} {field!r}")
    return Series(own.metric, own.matchers, own.drop)


def promql_check(rule: AlertRule, check: Check, detectors: Detectors) -> str:
    """One check as a PromQL comparison over the rule's series.

    :raises NotExportable: for a bare check on a field other than `anomalous`, or a field
        no metric carries.
    """
    assert rule.detector is not None
    op, number = check.op, check.number
    if op is None:
        if check.field != "anomalous":
            raise NotExportable(f"a bare check on {check.field!r} (only 'anomalous' can be "
                                "bare)")
        op, number = "==", 1.0
    series = promql_field(rule.detector, check.field, detectors)
    matchers = ", ".join((*series.matchers, *rule.scope_matchers()))
    selector = f"{series.metric}{{{matchers}}}" if matchers else series.metric
    if series.extra:  # so that checks on different metrics of one segment match in `and`
        selector = f"max without ({', '.join(series.extra)}) ({selector})"
    return f"{selector} {op} {number:g}"


#: Prometheus' own share of failed GenAI calls per service over a window (a recording rule
#: of the GenAI client histograms, written by the export)
ERROR_RATIO_RECORD = "driftwatch:gen_ai_error_ratio:rate{window}"
BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")  # shortest first


def availability_burn_only(rule: AlertRule) -> bool:
    """A whole-service rule of availability burn rates crossing upward: the SRE workbook's
    multi-window alert, which Prometheus computes from the counters itself."""
    checks = [check for group in rule.condition for check in group]
    return rule.scope == "service" and bool(checks) and all(
        (burn := BURN.match(check.field)) is not None and burn.group(1) == "availability"
        and check.op in (">", ">=") for check in checks)


def promql_burn_check(check: Check, availability: float) -> tuple[str, str]:
    """(comparison, window) of `burn_rates.availability.W op factor`: the error ratio over W
    against factor times the error budget, which is the burn rate's definition.

    :raises NotExportable: for a window with no recording rule.
    """
    window = BURN.match(check.field).group(2)  # type: ignore[union-attr]
    if window not in BURN_WINDOWS:
        raise NotExportable(f"no recording rule for a {window} window")
    return (f"{ERROR_RATIO_RECORD.format(window=window)} {check.op} {check.number:g} * "
            f"{1 - availability:g}", window)


def promql_unknown(rule: AlertRule, detectors: Detectors) -> str | None:
    """Where `evaluate` says unknown: a group whose bare `anomalous` check met insufficient
    data while its other checks hold; None for a rule without such a group."""
    assert rule.detector is not None
    matchers = ", ".join((f'detector="{rule.detector}"', *rule.scope_matchers()))
    insufficient = (f"max without (detector) (driftwatch_detector_insufficient_data{{{matchers}}})"
                    " == 1")
    terms = []
    for group in rule.condition:
        if Check("anomalous") in group:
            terms.append(" and ".join([insufficient, *(
                promql_check(rule, check, detectors) for check in group
                if check != Check("anomalous"))]))
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else " or ".join(f"({t})" for t in terms)


def promql_condition(rule: AlertRule, availability: float,
                     detectors: Detectors) -> tuple[str, frozenset[str]]:
    """(expression, burn windows whose recording rules it reads) of a rule on results. Where
    the engine's condition is unknown, a firing alert keeps firing, as the engine keeps it
    (too little data is not "no drift"): the expression holds there for the rule's own
    firing alerts.

    :raises NotExportable: see `promql_check`.
    """
    windows: set[str] = set()
    terms = []
    burn_only = availability_burn_only(rule)
    for group in rule.condition:
        parts = []
        for check in group:
            if burn_only:
                text, window = promql_burn_check(check, availability)
                windows.add(window)
            else:
                text = promql_check(rule, check, detectors)
            parts.append(text)
        terms.append(" and ".join(parts))
    expr = terms[0] if len(terms) == 1 else "\n or ".join(f"({t})" for t in terms)
    unknown = promql_unknown(rule, detectors)
    if unknown is not None:
        ignored = ", ".join(["alertname", "alertstate", "severity", *sorted(rule.labels)])
        expr = (f"{expr}\nor\n(\n  {unknown}\n  and ignoring ({ignored})\n"
                f'  ALERTS{{alertname="{rule.name}", alertstate="firing"}}\n)')
    return expr, frozenset(windows)

