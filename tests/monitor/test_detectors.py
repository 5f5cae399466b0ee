"""The daemon's table of detectors drives everything a result exports: the daemon schedules
a job per enabled detector, every field the Prometheus rules export reads is a series
/metrics carries with the same value, every such field exports as a rule, and every
detector has a report page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor.alerting.rules_export import export_rules
from monitor.config import Config
from monitor.core.metrics import SelfMetrics
from monitor.daemon import DETECTORS, Daemon
from monitor.ops.metrics import export_results
from monitor.ops.reports import page
from tests.monitor.results import FULL_DETAILS, full_result


def test_the_table_lists_each_detector_under_its_name() -> None:
    assert set(DETECTORS) == {"drift", "toxicity", "latency", "cost", "evaluation",
                              "canary"} == set(FULL_DETAILS)
    config = Config()
    for name, plugin in DETECTORS.items():
        assert plugin.name == name
        assert plugin.section(config) is getattr(config, name), "its config key is its name"


def test_the_daemon_schedules_a_job_for_each_enabled_detector(tmp_path: Path) -> None:
    daemon = Daemon(Config.model_validate({
        "store": {"path": str(tmp_path / "driftwatch.db")}, "toxicity": {"enabled": False}}))
    try:
        assert daemon.jobs.names == ["alerts", "canary", "cost", "drift", "embed_ahead",
                                     "evaluation", "latency", "retention", "self_check"]
    finally:
        asyncio.run(daemon.stop())


def scrape(detector: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The /metrics families of one full result of `detector`, by metric name."""
    metrics = SelfMetrics()
    result = full_result(detector)
    export_results(metrics, lambda: [result], lambda: [], DETECTORS)
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_every_field_a_prometheus_rule_reads_is_a_series_of_the_same_value(
        detector: str) -> None:
    plugin, result = DETECTORS[detector], full_result(detector)
    fields, scraped = plugin.rule_fields(result), scrape(detector)
    segment = {"service": "bot", "model": "gpt-4o",
               **({"direction": "prompt"} if plugin.directed else {}),
               **({"evaluation": result.evaluation} if result.evaluation else {})}
    names = [name for gauge in plugin.gauges for name in (gauge.field, *gauge.aliases)]
    assert names and len(plugin.gauges) == len({(g.family, g.labels) for g in plugin.gauges})
    for name in names:
        assert fields.get(name) is not None, f"{name} is no rule field of a full result"
        where = plugin.promql_field(name)
        assert where is not None, name
        fixed = dict(m.replace('"', "").split("=") for m in where.matchers)
        series = [value for labels, value in scraped.get(where.metric, [])
                  if labels == {**segment, **fixed}]
        assert series == [float(fields[name] or 0)], f"{name} -> {where}"
        assert set(where.drop) == set(fixed), "fixed labels are aggregated away"
    assert plugin.promql_field("no_such_field") is None


def test_every_gauge_field_exports_as_a_prometheus_rule() -> None:
    checks = [(name, gauge) for name, plugin in DETECTORS.items() for gauge in plugin.gauges]
    rules = {f"Check{i}": {"detector": name, "when": f"{gauge.field} > 0.5"}
             for i, (name, gauge) in enumerate(checks)}
    rules["Unexported"] = {"detector": "latency", "when": "count > 0"}
    exported = export_rules(Config.model_validate({"alerts": {"rules": rules}}), DETECTORS)
    assert "# Unexported is not exported: no exported metric carries latency 'count'" in \
        exported, "a field no gauge carries is still left out, with the reason"
    for i, (_, gauge) in enumerate(checks):
        assert f"# Check{i} is not exported" not in exported
        assert f"driftwatch_{gauge.family}" in exported


@pytest.mark.parametrize("detector", sorted(DETECTORS))
def test_every_detector_has_a_report_page(detector: str) -> None:
    plugin, result = DETECTORS[detector], full_result(detector)
    report = plugin.report(result, [result])
    assert report.title and report.facts and report.sections
    html = page(result, report)
    assert report.reference and report.reference in html
    for section in report.sections:
        assert f'<section id="{section.anchor}">' in html, section.anchor
