"""The committed dashboard JSON: what the builder makes now, and sound as Grafana reads it
(one data-source variable everywhere, unique ids, a tidy grid, every variable defined), and
the export that provisions it."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.export import JSON_DIR, dashboard_files, export

DS = {"type": "prometheus", "uid": "${datasource}"}
BUILTIN_VARS = {"__rate_interval", "__range", "__interval", "__data", "__field", "__series",
                "__value", "__from", "__to", "__all"}
SDK_PIN = "0.0.21"


def boards() -> dict[str, dict[str, Any]]:
    return {name: json.loads(text) for name, text in dashboard_files().items()}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    flat = []
    for panel in board["panels"]:
        flat.append(panel)
        flat.extend(panel.get("panels", []))
    return flat


# The SDK deprecates its classic model in favour of dashboard v2; classic JSON is what one
# file can serve Grafana 11 to 13 with, so it is what we build.
@pytest.mark.filterwarnings("ignore:Prefer using dashboardv2:DeprecationWarning")
def test_the_committed_json_is_what_the_builder_makes() -> None:
    try:
        version = metadata.version("grafana-foundation-sdk")
    except metadata.PackageNotFoundError:
        pytest.skip("grafana-foundation-sdk is not installed (pip install -e '.[dev]')")
    if version.lstrip("v") != SDK_PIN:
        pytest.skip(f"grafana-foundation-sdk {version} installed, the builder pins {SDK_PIN}")
    from dashboards.build import rendered

    files = rendered()
    assert sorted(p.name for p in files) == sorted(dashboard_files())
    for path, text in files.items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m dashboards.build"


def test_three_dashboards_with_stable_uids() -> None:
    found = boards()
    assert {b["uid"] for b in found.values()} == {
        "driftwatch-overview", "driftwatch-quality", "driftwatch-daemon"}
    for name, board in found.items():
        assert name == f"{board['uid']}.json"
        assert "driftwatch" in board["tags"]


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_every_query_uses_the_datasource_variable(name: str) -> None:
    text = dashboard_files()[name]
    board = json.loads(text)
    assert "__inputs" not in board and "${DS_" not in text
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for var in variables.values():
        if var["type"] == "query":
            assert var["datasource"] == DS, var["name"]
            assert var["query"].startswith("label_values("), var["name"]
    for panel in panels(board):
        if panel["type"] == "row":
            continue
        if panel["type"] == "text":
            assert "targets" not in panel or not panel["targets"]
            continue
        assert panel["datasource"] == DS, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(set(refs)) == len(refs) and all(refs), panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", DS) == DS, panel["title"]
            assert target["expr"].strip(), panel["title"]
    annotations = board["annotations"]["list"]
    assert any(a.get("builtIn") == 1 for a in annotations)
    alerts = [a for a in annotations if not a.get("builtIn")]
    assert {"ALERTS", "driftwatch_alerts"} <= {a["expr"].split("{")[0] for a in alerts}
    for annotation in alerts:
        assert annotation["datasource"] == DS and annotation["enable"]


@pytest.mark.parametrize("name, wanted", [
    ("driftwatch-overview.json", {"service", "provider", "model"}),
    ("driftwatch-quality.json", {"service", "model", "direction", "ops"}),
    ("driftwatch-daemon.json", {"instance"}),
])
def test_filter_variables(name: str, wanted: set[str]) -> None:
    variables = {v["name"] for v in boards()[name]["templating"]["list"]}
    assert variables == {"datasource", *wanted}


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_every_variable_used_is_defined(name: str) -> None:
    text = dashboard_files()[name]
    board = json.loads(text)
    defined = {v["name"] for v in board["templating"]["list"]}
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used - defined - BUILTIN_VARS == set()
    assert defined - {"datasource"} <= used, "a variable nothing uses"


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_panels_have_unique_ids_and_tile_the_grid(name: str) -> None:
    board = boards()[name]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    taken: set[tuple[int, int]] = set()
    for panel in panels(board):
        g = panel["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0, panel["title"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            assert (g["x"], g["w"], g["h"]) == (0, 24, 1)
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_export_writes_dashboards_and_provisioning(tmp_path: Path) -> None:
    written = export(tmp_path / "grafana", prometheus_url="http://prometheus:9090")
    names = sorted(p.relative_to(tmp_path / "grafana").as_posix() for p in written)
    assert names == sorted([*(f"dashboards/{n}" for n in dashboard_files()),
                            "provisioning/dashboards/driftwatch.yaml",
                            "provisioning/datasources/driftwatch.yaml"])
    for name, text in dashboard_files().items():
        assert (tmp_path / "grafana" / "dashboards" / name).read_text() == text
        assert (JSON_DIR / name).read_text() == text
    provider = yaml.safe_load(
        (tmp_path / "grafana/provisioning/dashboards/driftwatch.yaml").read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file"
    assert Path(entry["options"]["path"]) == (tmp_path / "grafana" / "dashboards").resolve()
    sources = yaml.safe_load(
        (tmp_path / "grafana/provisioning/datasources/driftwatch.yaml").read_text())
    (source,) = sources["datasources"]
    assert source | {"type": "prometheus", "uid": "prometheus",
                     "url": "http://prometheus:9090"} == source


def test_export_points_the_provider_where_grafana_mounts_it(tmp_path: Path) -> None:
    export(tmp_path, dashboards_path="/var/lib/grafana/dashboards/driftwatch")
    provider = yaml.safe_load((tmp_path / "provisioning/dashboards/driftwatch.yaml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/driftwatch"
    default = yaml.safe_load((tmp_path / "provisioning/datasources/driftwatch.yaml").read_text())
    assert default["datasources"][0]["url"] == "http://localhost:9090"


def test_the_dashboards_draw_the_thresholds_and_intervals_the_daemon_starts_with() -> None:
    from dashboards.defaults import DEFAULTS
    from monitor.config import Config

    config = Config()
    assert DEFAULTS.drift_alpha == config.drift.alpha
    assert DEFAULTS.drift_min_auc == config.drift.min_auc
    assert DEFAULTS.latency_min_ratio == config.latency.min_ratio
    assert DEFAULTS.cost_min_ratio == config.cost.min_ratio
    assert DEFAULTS.slo_availability == config.latency.slo.availability
    assert DEFAULTS.job_intervals_s == {
        "drift": config.drift.interval, "self_check": config.drift.self_check_interval,
        "toxicity": config.toxicity.interval, "latency": config.latency.interval,
        "evaluation": config.evaluation.interval, "retention": config.jobs.retention_interval}
