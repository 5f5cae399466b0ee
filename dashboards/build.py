"""Builds the dashboards with grafana-foundation-sdk and writes their classic JSON, which is
committed: the daemon ships the JSON and never imports the SDK.

    python -m dashboards.build          # regenerate dashboards/json/
    python -m dashboards.build --check  # exit 1 if the committed JSON is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import daemon_health, overview, quality
from dashboards.export import JSON_DIR

BUILDERS: dict[str, Callable[[], Dashboard]] = {
    overview.UID: overview.build,
    quality.UID: quality.build,
    daemon_health.UID: daemon_health.build,
}


def render(dashboard: Dashboard) -> str:
    """The dashboard as classic JSON text, stable from run to run."""
    model = json.loads(JSONEncoder().encode(dashboard))
    _tidy(model)
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _tidy(model: dict[str, Any]) -> None:
    """Undo two SDK 0.0.21 defaults: every link and annotation gets
    placement "inControlsMenu" (Grafana 12+ then hides it in a menu), and panel data links
    are dashboard links, with fields a data link does not have."""
    for item in [*model.get("links", []), *model["annotations"]["list"]]:
        item.pop("placement", None)
    for panel in model["panels"]:
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if "links" in defaults:
            defaults["links"] = [{k: link[k] for k in ("title", "url", "targetBlank")}
                                 for link in defaults["links"]]


def rendered() -> dict[Path, str]:
    return {JSON_DIR / f"{uid}.json": render(build()) for uid, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed JSON instead of writing it")
    args = parser.parse_args(argv)
    files = rendered()
    if args.check:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"stale: {path} (run python -m dashboards.build)", file=sys.stderr)
        return 1 if stale else 0
    JSON_DIR.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
