"""`driftwatch rules export` and `dashboards export`: the shipped rule file is what the
export writes, promtool accepts it and its unit tests pass, and overrides carry over."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitor.alerting.rules_export import export_rules
from monitor.config import load_config
from monitor.daemon import DETECTORS
from tests.harness import REPO, cli

RULES = REPO / "rules" / "driftwatch.rules.yml"
RULES_TEST = REPO / "rules" / "driftwatch.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)


def test_the_shipped_rule_file_is_the_export_of_the_defaults(tmp_path: Path) -> None:
    written = tmp_path / "rules.yml"
    out = cli("rules", "export", str(written)).stdout
    assert out.strip() == f"wrote {written}"
    assert written.read_text() == RULES.read_text() == export_rules(
        load_config(None, environ={}), DETECTORS), \
        "run `driftwatch rules export rules/driftwatch.rules.yml`"


def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 23 rules found" in checked.stdout  # 7 burn-window ratios, 16 alerts
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_overrides_links_and_custom_rules_carry_over(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("""
latency: {slo: {availability: 0.995}}
alerts:
  grafana_url: http://grafana:3000
  runbook_url: https://runbooks.example/driftwatch#{alertname}
  rules:
    LLMTimeToFirstTokenHigh: {when: "ttft_p95_s > 1.5", for: 3}
    LLMTrafficAbsent: false
    SlowAndFailing:
      detector: latency
      scope: model
      when: [["p99_s > 20", "error_rate > 0.05"]]
      annotations: {summary: "{segment} p99 {p99_s:.1f}s", description: "value {value:.1%}"}
    OddField:
      detector: drift
      when: "centroid_distance > 0.3"
""")
    text = cli("rules", "export", "-", "--config", str(config)).stdout
    alerts = {r["alert"]: r for g in yaml.safe_load(text)["groups"] for r in g["rules"]
              if "alert" in r}
    ttft = alerts["LLMTimeToFirstTokenHigh"]
    assert ttft["expr"] == \
        'max without (quantile_level) ' \
        '(driftwatch_latency_ttft_seconds{quantile_level="0.95"}) > 1.5'
    assert ttft["for"] == "2m"
    assert "LLMTrafficAbsent" not in alerts
    assert "rate1h > 14.4 * 0.005" in alerts["LLMErrorBudgetBurn"]["expr"]
    custom = alerts["SlowAndFailing"]
    assert custom["expr"] == (
        'max without (quantile_level) (driftwatch_latency_duration_seconds{quantile_level="0.99", '
        'model!=""}) > 20 and driftwatch_latency_error_ratio{model!=""} > 0.05')
    assert custom["annotations"]["summary"] == \
        "{{ $labels.service }}{{ with $labels.model }}/{{ . }}{{ end }}" \
        "{{ with $labels.split }} {{ . }}{{ end }} p99 (see driftwatch status)s"
    assert custom["annotations"]["description"] == "value {{ $value | humanizePercentage }}"
    assert "# OddField is not exported: no exported metric carries drift " \
           "'centroid_distance'" in text
    drift = alerts["LLMPromptDrift"]["annotations"]
    assert drift["runbook_url"] == "https://runbooks.example/driftwatch#LLMPromptDrift"
    assert drift["dashboard_url"] == \
        "http://grafana:3000/d/driftwatch-quality?var-service={{ $labels.service }}"
    written = tmp_path / "rules.yml"
    written.write_text(text)
    checked = promtool("check", "rules", str(written))
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("command", [["alerts"], ["rules", "export"],
                                     ["dashboards", "export"]])
def test_the_alert_commands_have_help(command: list[str]) -> None:
    assert "usage: driftwatch" in cli(*command, "--help").stdout


def test_dashboards_export_writes_dashboards_and_provisioning(tmp_path: Path) -> None:
    out = cli("dashboards", "export", str(tmp_path / "grafana")).stdout
    written = {Path(line.removeprefix("wrote ")).relative_to(tmp_path / "grafana").parts[0]
               for line in out.splitlines()}
    assert written == {"dashboards", "provisioning"}
    assert list((tmp_path / "grafana" / "dashboards").glob("driftwatch-*.json"))
