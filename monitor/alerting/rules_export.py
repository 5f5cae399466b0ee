"""`driftwatch rules export`: the alert rules as Prometheus alerting rules over the metrics
the daemon exports, for teams that alert from their own Prometheus (or Mimir, Thanos,
vmalert) instead of, or beside, the daemon's own evaluator.

Each rule becomes one alert with the same name, severity and labels. Checks on a detector
result become comparisons of the gauges its plugin exports (`DetectorPlugin.promql_field`,
and the families every detector shares); the
availability burn-rate rules become the SRE workbook's multi-window alerts over recording
rules of the GenAI client histograms, which Prometheus computes from the counters itself.
`for` (evaluations) becomes a duration: (for - 1) runs of the rule's source job. A check on
a field no metric carries cannot be exported; such a rule is left out with a comment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from monitor.alerting.config import RuleConfig, default_rules, parse_check
from monitor.alerting.engine import DASHBOARDS
from monitor.config import Config
from monitor.jobs.plugin import DetectorPlugin

Detectors = Mapping[str, DetectorPlugin[Any, Any]]

# The scheduled job's name on driftwatch_job_* metrics: not "job", which Prometheus keeps
# for the scrape target (ours would arrive as "exported_job").
JOB_LABEL = "job_name"
SEGMENT = "{{ $labels.service }}{{ with $labels.model }}/{{ . }}{{ end }}"
_BURN = re.compile(r"^burn_rates\.(\w+)\.(\w+)$")
_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")  # the burn windows, shortest first

_COMMON_FIELDS = {"n_current": "current", "n_reference": "reference"}


class NotExportable(ValueError):
    """A rule checks something no exported metric carries."""


def export_rules(config: Config, detectors: Detectors) -> str:
    """The rule file's YAML text; `detectors` (the daemon's table) say which metric
    carries each field a check reads."""
    alerts, skipped = [], []
    burn_windows: set[str] = set()
    for name, rule in config.alerts.rules.items():
        if not rule.enabled:
            continue
        try:
            alerts.append(_alert(name, rule, config, detectors, burn_windows))
        except NotExportable as exc:
            skipped.append(f"# {name} is not exported: {exc}")
    groups: list[dict[str, Any]] = []
    if burn_windows:
        groups.append({"name": "driftwatch-slo", "rules": [
            _error_ratio(window) for window in _WINDOWS if window in burn_windows]})
    groups.append({"name": "driftwatch-alerts", "rules": alerts})
    header = ("# driftwatch's alert rules for Prometheus: `driftwatch rules export FILE` "
              "writes them\n# from the config's rules. Check with `promtool check rules FILE`.\n")
    body = yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False, width=100,
                     allow_unicode=True)
    return header + "".join(f"{line}\n" for line in skipped) + body


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, as people write them."""


def _literal(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _literal)


def _alert(name: str, rule: RuleConfig, config: Config, detectors: Detectors,
           burn_windows: set[str]) -> dict[str, Any]:
    source_s = _source_interval(rule, config)
    alert: dict[str, Any] = {"alert": name,
                             "expr": _expr(rule, config, detectors, burn_windows)}
    wait_s = (rule.for_ - 1) * source_s
    if wait_s:
        alert["for"] = _duration(wait_s)
    alert["labels"] = {"severity": rule.severity, **rule.labels}
    alert["annotations"] = _annotations(name, rule, config)
    return alert


def _source_interval(rule: RuleConfig, config: Config) -> float:
    detector = "latency" if rule.kind == "traffic_absent" else rule.detector
    if detector is not None:
        section: Any = getattr(config, detector)
        return float(section.interval)
    return config.alerts.evaluation_interval


def _expr(rule: RuleConfig, config: Config, detectors: Detectors,
          burn_windows: set[str]) -> str:
    if rule.kind == "traffic_absent":
        return f"driftwatch_latency_requests_per_second{{{_scope(rule)}}} == 0"
    if rule.kind == "job_stale":
        k = f"{rule.stale_after:g}"
        return (f"time() - driftwatch_job_last_success_timestamp_seconds"
                f" > {k} * driftwatch_job_interval_seconds\n"
                f"or\n(\n  {k} * driftwatch_job_interval_seconds"
                f" unless driftwatch_job_last_success_timestamp_seconds\n)\n"
                f"< on (instance) group_left () (time() - process_start_time_seconds)")
    if rule.kind == "spans_refused":
        window = _duration(max(300.0, 2 * config.alerts.evaluation_interval))
        return (f"sum without (transport, reason) "
                f"(increase(driftwatch_spans_refused_total[{window}])) > 0")
    checks = [[parse_check(c) for c in group] for group in rule.when]
    if rule.scope == "service" and all(
            _BURN.match(f) and _BURN.match(f).group(1) == "availability"  # type: ignore[union-attr]
            and op in (">", ">=") for group in checks for f, op, _ in group):
        return _burn_expr(checks, config, burn_windows)
    terms = [" and ".join(_check(rule, check, detectors) for check in group)
             for group in checks]
    return terms[0] if len(terms) == 1 else "\n or ".join(f"({t})" for t in terms)


def _scope(rule: RuleConfig) -> str:
    matchers = []
    if rule.direction:
        matchers.append(f'direction="{rule.direction}"')
    if rule.scope == "service":
        matchers.append('model=""')
    elif rule.scope == "model":
        matchers.append('model!=""')
    return ", ".join(matchers)


def _check(rule: RuleConfig, check: tuple[str, str | None, float | None],
           detectors: Detectors) -> str:
    field, op, number = check
    assert rule.detector is not None
    scope = _scope(rule)
    plugin = detectors.get(rule.detector)
    own = plugin.promql_field(field) if plugin is not None else None
    if field == "anomalous" and op is None:
        metric, fixed, drop = "driftwatch_detector_anomalous", f'detector="{rule.detector}"', \
            "detector"
        op, number = "==", 1.0
    elif op is None:
        raise NotExportable(f"a bare check on {field!r} (only 'anomalous' can be bare)")
    elif field in _COMMON_FIELDS:
        metric, drop = "driftwatch_detector_samples", "detector, window"
        fixed = f'detector="{rule.detector}", window="{_COMMON_FIELDS[field]}"'
    elif own is not None:
        metric, fixed, drop = own.metric, ", ".join(own.matchers), ", ".join(own.drop)
    else:
        raise NotExportable(f"no exported metric carries {rule.detector} {field!r}")
    matchers = ", ".join(m for m in (fixed, scope) if m)
    selector = f"{metric}{{{matchers}}}" if matchers else metric
    if drop:  # so that checks on different metrics of one segment match in `and`
        selector = f"max without ({drop}) ({selector})"
    return f"{selector} {op} {number:g}"


def _burn_expr(checks: list[list[tuple[str, str | None, float | None]]], config: Config,
               burn_windows: set[str]) -> str:
    budget = f"{1 - config.latency.slo.availability:g}"
    terms = []
    for group in checks:
        parts = []
        for field, op, factor in group:
            window = _BURN.match(field).group(2)  # type: ignore[union-attr]
            if window not in _WINDOWS:
                raise NotExportable(f"no recording rule for a {window} window")
            burn_windows.add(window)
            parts.append(f"driftwatch:gen_ai_error_ratio:rate{window} {op} {factor:g} * {budget}")
        terms.append(" and ".join(parts))
    return terms[0] if len(terms) == 1 else "\n or ".join(f"({t})" for t in terms)


def _error_ratio(window: str) -> dict[str, Any]:
    """Share of failed GenAI operations per service over `window` (0 when none failed),
    labelled `service` like driftwatch's own metrics."""
    count = "gen_ai_client_operation_duration_seconds_count"
    total = f"sum by (service_name) (rate({count}[{window}]))"
    errors = f'sum by (service_name) (rate({count}{{error_type!=""}}[{window}]))'
    return {"record": f"driftwatch:gen_ai_error_ratio:rate{window}", "expr": (
        f"label_replace(\n  (\n    {errors}\n    or {total} * 0\n  )\n  / {total},\n"
        f'  "service", "$1", "service_name", "(.*)"\n)')}


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- annotations ------------------------------------------------------------------------------

_LABEL_PLACEHOLDERS = {"service", "model", "direction", "job", "alertname"}
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.\[\]]*)(?::([^{}]*))?\}")


def _shipped_annotations(name: str, config: Config) -> dict[str, str] | None:
    """Annotations written for Prometheus for the shipped rules (the daemon's own read
    values that no metric carries)."""
    slo = f"{config.latency.slo.availability:.2%}"
    status = "`driftwatch status --service {{ $labels.service }}`"
    shipped = {
        "LLMPromptDrift": (
            f"Prompts to {SEGMENT} drifted from their reference",
            f"driftwatch's drift tests found this segment's prompts changed; {status} shows "
            "the clusters of texts that moved, with redacted examples."),
        "LLMCompletionDrift": (
            f"Completions of {SEGMENT} drifted from their reference",
            f"driftwatch's drift tests found this segment's completions changed; {status} "
            "shows the clusters of texts that moved, with redacted examples."),
        "LLMToxicityHigh": (
            f"{{{{ $labels.direction }}}}s of {SEGMENT} are more toxic",
            "The toxic rate rose significantly above the reference's, or its lower 95% "
            f"bound is above the threshold; {status} shows the rate and the most toxic texts."),
        "LLMLatencyRegression": (
            f"{SEGMENT} is slower than its reference",
            "Call durations are significantly above the reference's (p95 ratio in "
            "driftwatch_latency_p95_ratio)."),
        "LLMErrorBudgetBurn": (
            "{{ $labels.service }} is burning its availability error budget",
            "{{ $value | humanizePercentage }} of LLM calls failed over the long window "
            f"(availability SLO {slo}, paging at 14.4x burn over 1h and 5m or 6x over 6h "
            "and 30m)."),
        "LLMErrorBudgetBurnSlow": (
            "{{ $labels.service }} is slowly burning its availability error budget",
            "{{ $value | humanizePercentage }} of LLM calls failed over the long window "
            f"(availability SLO {slo}, a ticket at 3x burn over 1d and 2h or 1x over 3d "
            "and 6h)."),
        "LLMTimeToFirstTokenHigh": (
            f"{SEGMENT}: time to first token p95 is {{{{ $value | humanizeDuration }}}}",
            "Streamed responses take {{ $value | humanizeDuration }} (p95) to their first "
            "token."),
        "LLMTrafficAbsent": (
            f"{{{{ $labels.service }}}} sent no LLM calls in the last "
            f"{_duration(config.latency.window)}",
            "The service had calls in the last 3d but none in its latest window; is the "
            "app down or no longer exporting its traces?"),
        "DriftwatchJobStale": (
            "driftwatch job {{ $labels.job_name }} has not succeeded for a while",
            "The job has not succeeded for more than its stale_after intervals: its results "
            "(and the alerts on them) are stale. See the daemon's log."),
        "DriftwatchRefusingSpans": (
            "driftwatch is refusing spans",
            "Exporters were refused {{ $value | humanize }} spans (queue full, too large or "
            "invalid): see driftwatch_spans_refused_total by reason."),
    }
    if name not in shipped:
        return None
    summary, description = shipped[name]
    return {"summary": summary, "description": description}


def _annotations(name: str, rule: RuleConfig, config: Config) -> dict[str, str]:
    default = default_rules().get(name, {}).get("annotations")
    shipped = _shipped_annotations(name, config)
    if shipped is not None and rule.annotations == default:
        annotations = shipped
    else:
        annotations = {k: _go_template(v) for k, v in rule.annotations.items()}
    if config.alerts.runbook_url:
        annotations.setdefault("runbook_url",
                               config.alerts.runbook_url.replace("{alertname}", name))
    if config.alerts.grafana_url:
        uid = DASHBOARDS.get(rule.detector or rule.kind, "driftwatch-overview")
        query = "?var-service={{ $labels.service }}" if rule.kind != "job_stale" else ""
        annotations.setdefault("dashboard_url",
                               f"{config.alerts.grafana_url.rstrip('/')}/d/{uid}{query}")
    return annotations


def _go_template(text: str) -> str:
    """A daemon annotation template as a Prometheus one: labels and `value` carry over;
    what only a detector result holds is pointed at instead."""

    def replace(match: re.Match[str]) -> str:
        name, spec = match.group(1), match.group(2) or ""
        if name == "job":
            return f"{{{{ $labels.{JOB_LABEL} }}}}"
        if name in _LABEL_PLACEHOLDERS:
            return f"{{{{ $labels.{name} }}}}"
        if name == "segment":
            return SEGMENT
        if name == "value":
            return ("{{ $value | humanizePercentage }}" if spec.endswith("%")
                    else "{{ $value | humanize }}")
        return "(see driftwatch status)"

    return " ".join(_PLACEHOLDER.sub(replace, text).split())
