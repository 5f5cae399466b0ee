"""Writes the shipped dashboards and the Grafana provisioning that loads them: a file
provider for the dashboards and a Prometheus data source with uid "prometheus".

Runtime code: it copies the committed JSON (package data) and never imports the SDK that
built it. The layout suits Grafana's own directories:

    DIR/dashboards/driftwatch-*.json
    DIR/provisioning/dashboards/driftwatch.yaml    -> /etc/grafana/provisioning/dashboards/
    DIR/provisioning/datasources/driftwatch.yaml   -> /etc/grafana/provisioning/datasources/
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

JSON_DIR = Path(__file__).resolve().parent / "json"
DATASOURCE_UID = "prometheus"
FOLDER = "driftwatch"


def dashboard_files() -> dict[str, str]:
    """The shipped dashboards: file name -> JSON text."""
    folder = resources.files("dashboards") / "json"
    return {entry.name: entry.read_text(encoding="utf-8")
            for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".json")}


def export(directory: Path, *, prometheus_url: str = "http://localhost:9090",
           dashboards_path: str | None = None, scrape_interval: str = "15s") -> list[Path]:
    """Write the dashboards and their provisioning under `directory`; return the files
    written.

    :param prometheus_url: where Grafana reaches Prometheus.
    :param dashboards_path: the dashboards directory as Grafana sees it (a container mount,
        say); default: `directory/dashboards`, absolute.
    :param scrape_interval: Prometheus's scrape interval, so `$__rate_interval` spans at
        least four scrapes.
    """
    directory = Path(directory)
    boards = directory / "dashboards"
    boards.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in dashboard_files().items():
        path = boards / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    provider = {"apiVersion": 1, "providers": [{
        "name": FOLDER, "orgId": 1, "folder": FOLDER, "folderUid": FOLDER, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 30,
        "options": {"path": dashboards_path or str(boards.resolve())}}]}
    datasource = {"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "type": "prometheus", "uid": DATASOURCE_UID, "access": "proxy",
        "url": prometheus_url, "isDefault": True,
        "jsonData": {"timeInterval": scrape_interval, "httpMethod": "POST"}}]}
    for kind, document in (("dashboards", provider), ("datasources", datasource)):
        written.append(_write_yaml(directory / "provisioning" / kind / "driftwatch.yaml",
                                   document))
    return written


def _write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path
