"""The docs keep up with the code: docs/configuration.md documents every config key the model
accepts and no key it does not, with the defaults the model has; README.md links every page
under docs/, every relative link in them leads to a file (and heading) that exists, and
every bench command they quote names a script and flags that exist.

The walk reads the pydantic model tree of `monitor.config.Config`; a key under a map is
written with a placeholder (`alerts.rules.<name>.severity`) and a key of a list's items with
`[]` (`alerts.notifiers.slack[].url`), as docs/configuration.md explains at its top."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union

import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from monitor.config import Config

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
REFERENCE = DOCS / "configuration.md"
MAP_KEY = "<name>"
# A row of a key table: | `dotted.key` | type | default | meaning |
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|([^|]*)\|([^|]*)\|(.*)\|\s*$")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


@dataclass(frozen=True)
class Key:
    path: str
    field: FieldInfo
    leaf: bool  # False for a section (a model) that holds keys of its own


def models_in(annotation: Any) -> tuple[str, type[BaseModel]] | None:
    """(suffix, model) when a field holds a model: itself or optional (""), a tuple of them
    ("[]") or a map of them (".<name>"); None for a plain value."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        found = [m for m in (models_in(a) for a in args if a is not type(None)) if m is not None]
        assert len(found) <= 1, f"a union of several models: {annotation}"
        return found[0] if found else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "", annotation
    item = (args[0] if origin is list or (origin is tuple and args[1:] == (Ellipsis,))
            else args[1] if origin is dict else None)
    inner = models_in(item) if item is not None else None
    if inner is not None and inner[0] == "":
        return ("[]" if origin in (list, tuple) else f".{MAP_KEY}"), inner[1]
    assert inner is None and not any(holds_model(a) for a in args), (
        f"the docs walk does not know where the keys of {annotation} go: teach models_in")
    return None


def holds_model(annotation: Any) -> bool:
    return (isinstance(annotation, type) and issubclass(annotation, BaseModel)) or any(
        holds_model(a) for a in typing.get_args(annotation))


def config_keys(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[Key]:
    """Every key of the config, sections included, as documented: YAML names (aliases)."""
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        holds = models_in(field.annotation)
        yield Key(path, field, leaf=holds is None)
        if holds is not None:
            suffix, inner = holds
            yield from config_keys(inner, f"{path}{suffix}.")


@dataclass(frozen=True)
class Row:
    line: int
    key: str
    default: str


def documented() -> list[Row]:
    rows = []
    for number, line in enumerate(REFERENCE.read_text().splitlines(), 1):
        match = ROW.match(line)
        if match:
            rows.append(Row(number, match.group(1), match.group(3).strip()))
    return rows


def yaml_default(field: FieldInfo) -> str:
    """The model's default as a docs cell would state it (for the failure message)."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, BaseModel) or (isinstance(value, dict) and any(
            isinstance(v, BaseModel) for v in value.values())):
        return "(section)"
    if isinstance(value, tuple | Path):
        value = list(value) if isinstance(value, tuple) else str(value)
    return "`" + yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix(
        "\n...").removesuffix(" ...") + "`"


def test_every_config_key_is_documented_and_every_documented_key_exists() -> None:
    keys = {k.path: k for k in config_keys()}
    rows = documented()
    written = [r.key for r in rows]
    missing = [k for k in keys.values() if k.leaf and k.path not in written]
    unknown = [r for r in rows if r.key not in keys]
    twice = sorted({k for k in written if written.count(k) > 1})
    report = []
    if missing:
        report.append("keys of the config model that docs/configuration.md does not document "
                      "(add a row to the section's table):\n" + "\n".join(
                          f"| `{k.path}` | ? | {yaml_default(k.field)} | ? |" for k in missing))
    if unknown:
        report.append("documented keys the config model does not have:\n" + "\n".join(
            f"docs/configuration.md:{r.line}: `{r.key}`" for r in unknown))
    if twice:
        report.append("keys documented twice: " + ", ".join(twice))
    assert not report, "\n\n".join(report)


def test_the_walk_finds_keys_under_sections_lists_and_maps() -> None:
    paths = {k.path for k in config_keys() if k.leaf}
    assert {"receivers.otlp_grpc.endpoint", "receivers.otlp_grpc.tls.cert_file",
            "drift.segments[].reference.mode", "alerts.notifiers.slack[].url",
            "alerts.rules.<name>.for", "metrics.otlp.headers"} <= paths
    assert "drift.segments" not in paths and "alerts.rules" not in paths


def test_every_stated_default_is_the_models() -> None:
    """A default cell is a YAML value in backticks (checked by validating it as the key's
    type), `unset` (the model's default is None), `required`, or prose (not checked)."""
    keys = {k.path: k for k in config_keys()}
    wrong = []
    for row in documented():
        key = keys.get(row.key)
        if key is None:
            continue  # the test above names it
        field = key.field
        if row.default == "required":
            ok = field.is_required()
        elif field.is_required():
            ok = False
        elif row.default == "unset":
            ok = field.get_default(call_default_factory=True) is None
        elif re.fullmatch(r"`[^`]*`", row.default):
            annotation: Any = (Annotated[(field.annotation, *field.metadata)]
                               if field.metadata else field.annotation)
            adapter: TypeAdapter[Any] = TypeAdapter(annotation)
            try:
                stated = adapter.validate_python(yaml.safe_load(row.default.strip("`")))
            except ValidationError as exc:
                stated = f"invalid: {exc.errors()[0]['msg']}"
            ok = stated == field.get_default(call_default_factory=True)
        else:
            continue
        if not ok:
            wrong.append(f"docs/configuration.md:{row.line}: `{row.key}` states {row.default}, "
                         f"the model's default is {yaml_default(field)}")
    assert not wrong, "\n".join(wrong)


def test_the_reference_example_is_the_defaults() -> None:
    """The first YAML block of docs/configuration.md spells out the defaults."""
    block = REFERENCE.read_text().split("```yaml\n", 1)[1].split("```", 1)[0]
    example, defaults = Config.model_validate(yaml.safe_load(block)), Config()
    differ = [f"{name}: the example gives {getattr(example, name)!r}, the default is "
              f"{getattr(defaults, name)!r}" for name in Config.model_fields
              if getattr(example, name) != getattr(defaults, name)]
    assert differ == [], "\n".join(differ)


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_the_readme_links_every_docs_page() -> None:
    readme = REPO / "README.md"
    linked = {(readme.parent / target.split("#")[0]).resolve()
              for target in LINK.findall(readme.read_text())}
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert unlinked == [], f"README.md links none of these docs pages: {unlinked}"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no such heading in {dest.relative_to(REPO)}")
    assert broken == [], f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_every_bench_script_is_in_the_performance_page_and_every_bench_command_runs_one() -> None:
    """Every number keeps its command: each script in bench/ is listed in docs/performance.md,
    and each command the docs quote names a script that exists, with flags it takes."""
    quoted = re.findall(r"bench/(\w+)\.py([^`]*)`", " ".join(p.read_text().replace("\n", " ")
                                                           for p in markdown_files()))
    listed = (DOCS / "performance.md").read_text()
    wrong = [f"bench/{s.name} is not in docs/performance.md"
             for s in sorted((REPO / "bench").glob("*.py")) if f"bench/{s.name}" not in listed]
    for script, args in quoted:
        path = REPO / "bench" / f"{script}.py"
        if not path.exists():
            wrong.append(f"bench/{script}.py: no such script")
            continue
        source = path.read_text()
        wrong += [f"bench/{script}.py has no {flag}" for flag in re.findall(r"--[\w-]+", args)
                  if f'"{flag}"' not in source]
    assert wrong == [], "\n".join(wrong)
