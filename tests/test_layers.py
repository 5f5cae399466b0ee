"""The import arrows run one way: everything may use the shared core (monitor.core), the core
uses nothing of ours, and collectors/, detectors/ and dashboards/ use nothing above the core,
so that only the composition root (monitor.daemon) and the CLI see the whole tree."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS = ("monitor", "collectors", "detectors", "dashboards")


def imports(package: str) -> list[tuple[str, str]]:
    """(file:line, module) of every import of our packages inside `package`."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            found += [(where, name) for name in names if name.split(".")[0] in OURS]
    return found


def is_core(module: str) -> bool:
    return module == "monitor" or module == "monitor.core" or module.startswith("monitor.core.")


def test_the_core_imports_nothing_of_ours_but_itself() -> None:
    assert [(w, m) for w, m in imports("monitor/core") if not is_core(m)] == []


def test_collectors_detectors_and_dashboards_import_only_themselves_and_the_core() -> None:
    for package in ("collectors", "detectors", "dashboards"):
        upward = [(w, m) for w, m in imports(package)
                  if not (is_core(m) or m.split(".")[0] == package)]
        assert upward == [], f"{package} imports above the core"


def test_the_walk_sees_imports_so_the_checks_above_can_fail() -> None:
    assert ("collectors/ingest.py", "monitor.core.metrics") in {
        (w.split(":")[0], m) for w, m in imports("collectors")}
