"""`driftwatch rules export`: the alert rules as Prometheus alerting rules over the metrics
the daemon exports, for teams that alert from their own Prometheus (or Mimir, Thanos,
vmalert) instead of, or beside, the daemon's own evaluator.

Each rule becomes one alert with the same name, severity and labels. What a rule on results
means in PromQL (the gauges `monitor.core.metrics` exports from each field, the scope's
matchers, `for` as (for - 1) runs of the source job, and the availability burn-rate rules as
the SRE workbook's multi-window alerts over recording rules of the GenAI client histograms)
is defined in `monitor.alerting.rules`, beside what it means to the in-process engine; this
module writes the file, the recording rules, the rules on the daemon itself and the
annotations. A check on a field no metric carries cannot be exported; such a rule is left
out with a comment.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from monitor.alerting.config import RuleConfig, default_rules
from monitor.alerting.engine import DASHBOARDS, dashboard_key
from monitor.alerting.rules import (
    BURN_WINDOWS,
    ERROR_RATIO_RECORD,
    AlertRule,
    Detectors,
    NotExportable,
    promql_condition,
)
from monitor.config import Config

# The scheduled job's name on driftwatch_job_* metrics: not "job", which Prometheus keeps
# for the scrape target (ours would arrive as "exported_job").
JOB_LABEL = "job_name"
SEGMENT = ("{{ $labels.service }}{{ with $labels.model }}/{{ . }}{{ end }}"
           "{{ with $labels.split }} {{ . }}{{ end }}")


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
    # One group, the burn-window ratios first: rules of a group run in order at one time, so
    # the burn alerts read this evaluation's ratios, as the engine reads this run's burn
    # rates. In a group of their own the ratios could be an interval old (groups run on
    # their own timers), and the alerts a step behind the engine's.
    ratios = [_error_ratio(window) for window in BURN_WINDOWS if window in burn_windows]
    groups = [{"name": "driftwatch-alerts", "rules": [*ratios, *alerts]}]
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


def _alert(name: str, config: RuleConfig, root: Config, detectors: Detectors,
           burn_windows: set[str]) -> dict[str, Any]:
    rule = AlertRule.from_config(name, config)
    source_s = rule.source_interval_s(_intervals(root, detectors),
                                      root.alerts.evaluation_interval)
    alert: dict[str, Any] = {"alert": name,
                             "expr": _expr(rule, root, detectors, burn_windows)}
    wait_s = rule.for_seconds(source_s)
    if wait_s:
        alert["for"] = _duration(wait_s)
    alert["labels"] = {"severity": rule.severity, **rule.labels}
    alert["annotations"] = _annotations(name, config, root)
    return alert


def _intervals(config: Config, detectors: Detectors) -> dict[str, float]:
    """Every detector's job interval, as the engine reads them (`AlertEngine`)."""
    return {name: plugin.section(config).interval for name, plugin in detectors.items()}


def _expr(rule: AlertRule, config: Config, detectors: Detectors,
          burn_windows: set[str]) -> str:
    if rule.on_results:
        expr, windows = promql_condition(rule, config.latency.slo.availability, detectors)
        burn_windows.update(windows)
        return expr
    if rule.kind == "job_stale":
        k = f"{rule.stale_after:g}"
        return (f"time() - driftwatch_job_last_success_timestamp_seconds"
                f" > {k} * driftwatch_job_interval_seconds\n"
                f"or\n(\n  {k} * driftwatch_job_interval_seconds"
                f" unless driftwatch_job_last_success_timestamp_seconds\n)\n"
                f"< on (instance) group_left () (time() - process_start_time_seconds)")
    if rule.kind == "job_behind":
        return f"driftwatch_job_busy_ratio > {rule.busy_share:g}"
    if rule.kind == "disk_filling":
        threshold = rule.free_below * config.store.min_free_bytes
        return f"driftwatch_store_filesystem_free_bytes < {threshold:.0f}"
    assert rule.kind == "spans_refused", rule.kind
    window = _duration(max(300.0, 2 * config.alerts.evaluation_interval))
    return (f"sum without (transport, reason) "
            f"(increase(driftwatch_spans_refused_total[{window}])) > 0")


def _error_ratio(window: str) -> dict[str, Any]:
    """Share of failed GenAI operations per service over `window` (0 when none failed),
    labelled `service` like driftwatch's own metrics."""
    count = "gen_ai_client_operation_duration_seconds_count"
    total = f"sum by (service_name) (rate({count}[{window}]))"
    errors = f'sum by (service_name) (rate({count}{{error_type!=""}}[{window}]))'
    return {"record": ERROR_RATIO_RECORD.format(window=window), "expr": (
        f"label_replace(\n  (\n    {errors}\n    or {total} * 0\n  )\n  / {total},\n"
        f'  "service", "$1", "service_name", "(.*)"\n)')}


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# -- annotations ------------------------------------------------------------------------------

_LABEL_PLACEHOLDERS = {"service", "model", "split", "direction", "evaluation", "job",
                       "alertname"}
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
        "LLMEvaluationDrop": (
            f"{{{{ $labels.evaluation }}}} of {SEGMENT} dropped below its reference",
            "The evaluation's pass rate or scores fell significantly below the reference's "
            "(pass rate in driftwatch_evaluation_pass_rate, the reference's in "
            f"driftwatch_evaluation_reference_pass_rate); {status} shows the worst-scored "
            "calls, redacted."),
        "LLMCanaryRegression": (
            "{{ $labels.service }}'s newest version regressed against the one before it",
            "The canary found the newest service.version significantly worse than the "
            "previous one on latency, errors, tokens, cost per call, toxicity or an "
            "evaluation's pass rate or score; "
            "`driftwatch status --detector canary --service {{ $labels.service }}` links "
            "the comparison."),
        "LLMTrafficAbsent": (
            f"{{{{ $labels.service }}}} sent no LLM calls in the last "
            f"{_duration(config.latency.window)}",
            "The service had calls in the last 3d but none in its latest window; is the "
            "app down or no longer exporting its traces?"),
        "DriftwatchJobStale": (
            "driftwatch job {{ $labels.job_name }} has not succeeded for a while",
            "The job has not succeeded for more than its stale_after intervals: its results "
            "(and the alerts on them) are stale. See the daemon's log."),
        "DriftwatchDetectorsBehind": (
            "driftwatch job {{ $labels.job_name }} is falling behind",
            "Its last run took {{ $value | humanizePercentage }} of its interval: its results "
            "will go stale. Lower sample_cap, add embedding.threads, or use embedding.remote."),
        "DriftwatchDiskFilling": (
            "driftwatch's store has {{ $value | humanize1024 }}B free",
            f"Ingest stops below store.min_free_bytes ({config.store.min_free_bytes:,} "
            "bytes): free space on the store's filesystem, lower retention or move the "
            "store."),
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
        uid = DASHBOARDS.get(dashboard_key(AlertRule.from_config(name, rule)),
                             "driftwatch-overview")
        daemon_wide = rule.kind in ("job_stale", "job_behind", "disk_filling")
        query = "" if daemon_wide else "?var-service={{ $labels.service }}"
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
