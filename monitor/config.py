"""The daemon's configuration: one YAML file into one tree of typed, frozen models.

Unknown keys are errors, and every error names the path and the value; so is a key given
twice in one mapping (YAML would silently keep the last: a second `ops:` block would drop
the first one's `auth`). Any key can be
overridden by an environment variable `DRIFTWATCH_<SECTION>__<KEY>` (nested keys joined by
`__`, values read as YAML scalars), e.g. `DRIFTWATCH_STORE__RETENTION=3d`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BeforeValidator,
    ValidationError,
    model_validator,
)

from collectors.config import IngestConfig, ReceiversConfig
from detectors.redaction.config import RedactionConfig
from monitor.alerting.config import AlertsConfig
from monitor.core.config import Section
from monitor.core.errors import ConfigError
from monitor.jobs.canary.config import CanaryConfig, CompareConfig
from monitor.jobs.config import (
    DriftConfig,
    EmbeddingConfig,
    JobsConfig,
    LatencyConfig,
    ToxicityConfig,
    WindowedConfig,
)
from monitor.jobs.cost.config import CostConfig
from monitor.jobs.evaluation.config import EvaluationConfig
from monitor.ops.config import MetricsConfig, OpsConfig
from monitor.pricing.config import PricingConfig
from monitor.store.config import StoreConfig

ENV_PREFIX = "DRIFTWATCH_"


def _log_level(value: Any) -> str:
    level = str(value).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got: {value!r}")
    return level


class LogConfig(Section):
    level: Annotated[str, BeforeValidator(_log_level)] = "INFO"
    format: Literal["text", "json"] = "text"


class Config(Section):
    receivers: ReceiversConfig = ReceiversConfig()
    ingest: IngestConfig = IngestConfig()
    ops: OpsConfig = OpsConfig()
    store: StoreConfig = StoreConfig()
    jobs: JobsConfig = JobsConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    drift: DriftConfig = DriftConfig()
    toxicity: ToxicityConfig = ToxicityConfig()
    latency: LatencyConfig = LatencyConfig()
    cost: CostConfig = CostConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    compare: CompareConfig = CompareConfig()
    canary: CanaryConfig = CanaryConfig()
    alerts: AlertsConfig = AlertsConfig()
    redaction: RedactionConfig = RedactionConfig()
    metrics: MetricsConfig = MetricsConfig()
    pricing: PricingConfig = PricingConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _references_within_retention(self) -> Config:
        for name in ("drift", "toxicity", "latency", "cost", "evaluation"):
            section: WindowedConfig = getattr(self, name)
            # cost's default reference is trailing (a day ago): under a shorter retention it
            # finds no calls and says "insufficient data"; only one the user set is an error
            unset = name == "cost" and "reference" not in section.model_fields_set
            for where, ref in [*([] if unset else [("reference", section.reference)]), *(
                    (f"segments.{i}.reference", s.reference)
                    for i, s in enumerate(section.segments))]:
                if ref.mode == "trailing" and ref.offset + section.window > self.store.retention:
                    raise ValueError(
                        f"{name}.{where}.offset: a trailing reference must lie within "
                        f"store.retention ({self.store.retention:g}s), got: {ref.offset:g}s "
                        f"plus a {section.window:g}s window")
        return self

    @model_validator(mode="after")
    def _split_variant_needs_its_attribute(self) -> Config:
        if "variant" in self.jobs.split_by and self.ingest.variant_attribute is None:
            raise ValueError("jobs.split_by: 'variant' needs ingest.variant_attribute (the "
                             f"attribute calls carry their variant in), got: "
                             f"{list(self.jobs.split_by)} with no ingest.variant_attribute")
        return self


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the YAML file (none = defaults), apply env overrides, validate.

    :raises ConfigError: naming the path of every bad key or value.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
        try:
            loaded = yaml.load(text, Loader=UniqueKeyLoader)
        except DuplicateKey as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            kind = type(loaded).__name__
            raise ConfigError(f"{path}: expected a mapping at the top, got: {kind}")
        raw = loaded or {}
    _apply_env(raw, os.environ if environ is None else environ)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_render(exc, path)) from None


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, refusing a key that appears twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults` merges by YAML's rules: later keys override
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                earlier = first.get(key)
            except TypeError:  # unhashable; the SafeLoader's own error names it
                break
            if earlier is None:
                first[key] = line
            else:
                raise DuplicateKey(f"line {line}: duplicate key {key!r} (first at line "
                                   f"{earlier}); YAML would keep only the last")
        return super().construct_mapping(node, deep=deep)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name[len(ENV_PREFIX):]:
            continue
        keys = name[len(ENV_PREFIX):].lower().split("__")
        node = raw
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(keys)} is not a section")
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            node[keys[-1]] = value


def _render(exc: ValidationError, path: str | Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top)"
        if err["type"] == "extra_forbidden":
            lines.append(f"{where}{loc}: unknown key")
            continue
        message = err["msg"].removeprefix("Value error, ")
        if "got:" in message:
            lines.append(f"{where}{loc}: {message}")
        else:
            lines.append(f"{where}{loc}: {message}, got: {err.get('input')!r}")
    return "\n".join(lines)
