"""The daemon's configuration: one YAML file into one tree of typed, frozen models.

Unknown keys are errors, and every error names the path and the value. Any key can be
overridden by an environment variable `DRIFTWATCH_<SECTION>__<KEY>` (nested keys joined by
`__`, values read as YAML scalars), e.g. `DRIFTWATCH_STORE__RETENTION=3d`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from monitor.default_rules import DEFAULT_RULES_YAML
from monitor.errors import ConfigError

ENV_PREFIX = "DRIFTWATCH_"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNIT_B = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 1 << 20,
           "GB": 10**9, "GiB": 1 << 30}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like "90s", "15m", "7d"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 7d")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration like 30s, 15m, 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string like "64MiB"."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 4MiB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("expected a size like 65536, 512KiB or 64MiB")
    return int(match.group(1)) * _UNIT_B[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_endpoint(endpoint: str) -> str:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("expected host:port, e.g. 127.0.0.1:4317")
    return endpoint


Endpoint = Annotated[str, BeforeValidator(lambda v: _check_endpoint(str(v)))]


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"no such file, got: {str(path)!r}")
    return path


# A file the daemon reads (certificates, keys, secrets), checked to exist when the config is.
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


class TlsConfig(Section):
    cert_file: ExistingFile
    key_file: ExistingFile


class AuthConfig(Section):
    """Bearer-token auth: requests must carry `Authorization: Bearer <token>`."""

    bearer_token: str | None = Field(default=None, min_length=16)
    bearer_token_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AuthConfig:
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("set bearer_token or bearer_token_file, not both")
        return self

    def token(self) -> str | None:
        if self.bearer_token_file:
            return self.bearer_token_file.read_text().strip() or None
        return self.bearer_token


class ReceiverConfig(Section):
    enabled: bool = True
    endpoint: Endpoint
    max_body_size: Size = 64 << 20  # after decompression, as the OTLP spec allows
    tls: TlsConfig | None = None
    auth: AuthConfig | None = None


class GrpcReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4317"


class HttpReceiverConfig(ReceiverConfig):
    endpoint: Endpoint = "127.0.0.1:4318"
    cors_allowed_origins: tuple[str, ...] = ()


class ReceiversConfig(Section):
    otlp_grpc: GrpcReceiverConfig = GrpcReceiverConfig()
    otlp_http: HttpReceiverConfig = HttpReceiverConfig()


def _workers(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 64:
        return value
    raise ValueError(f"expected 'auto' or a number of processes from 0 to 64, got: {value!r}")


class IngestConfig(Section):
    """The bounded queue between the receivers and the store."""

    queue_max_items: int = Field(default=50_000, ge=1)  # calls + content events waiting
    queue_max_bytes: Size = 128 << 20  # of text in them (one call may hold 200 KB of it)
    max_inflight_bytes: Size = 256 << 20  # request bodies being decoded at once
    retry_after: Duration = 1.0  # what an overloaded receiver tells the exporter
    commit_max_items: int = Field(default=20_000, ge=1)  # largest group commit
    join_window: Duration = 3600.0  # how long a log event waits for its span
    max_attribute_chars: int = Field(default=65_536, ge=256)  # longer texts are truncated
    # processes that decode and extract large request bodies; "auto" = one per usable core,
    # at most 4; 0 = extract on threads of the daemon (one core's worth, under its GIL)
    workers: Annotated[int | Literal["auto"], BeforeValidator(_workers)] = "auto"


class OpsConfig(Section):
    endpoint: Endpoint = "127.0.0.1:9464"
    auth: AuthConfig | None = None


class StoreConfig(Section):
    path: Path = Path("./data/driftwatch.db")
    retention: Duration = 7 * 86400.0
    retention_batch: int = Field(default=2_000, ge=1)


class JobsConfig(Section):
    retention_interval: Duration = 3600.0


class RemoteEmbeddingConfig(Section):
    """An OpenAI-compatible /v1/embeddings server (e.g. text-embeddings-inference)."""

    url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)
    api_key: str | None = None
    timeout: Duration = 30.0


class EmbeddingConfig(Section):
    model: str = "all-MiniLM-L6-v2"  # a sentence-transformers name or local directory
    remote: RemoteEmbeddingConfig | None = None  # used instead of `model` when set
    batch_size: int = Field(default=64, ge=1, le=4096)
    threads: int = Field(default=1, ge=1, le=256)  # CPU threads the models and BLAS may use
    cache_items: int = Field(default=50_000, ge=0)  # in-memory LRU before the stored cache


class ReferenceConfig(Section):
    """What a window is compared with.

    `baseline`: a pinned window (`driftwatch baseline set`), or else the first full window
    after the segment appeared. `trailing`: the same window `offset` earlier (1d, 7d).
    """

    mode: Literal["baseline", "trailing"] = "baseline"
    offset: Duration = 86400.0


class SegmentReference(Section):
    service: str = Field(min_length=1)
    model: str | None = None
    reference: ReferenceConfig


class WindowedConfig(Section):
    enabled: bool = True
    window: Duration = 3600.0  # the current window: calls that started in the last `window`
    reference: ReferenceConfig = ReferenceConfig()
    segments: tuple[SegmentReference, ...] = ()  # per-segment reference overrides
    min_samples: int = Field(default=50, ge=10)
    sample_cap: int = Field(default=2_000, ge=10)  # per segment, direction and window
    alpha: float = Field(default=0.01, gt=0, lt=1)

    @model_validator(mode="after")
    def _cap_above_minimum(self) -> WindowedConfig:
        if self.sample_cap < self.min_samples:
            raise ValueError(f"sample_cap: must be at least min_samples ({self.min_samples}), "
                             f"got: {self.sample_cap}")
        return self

    def reference_for(self, service: str, model: str | None) -> ReferenceConfig:
        """The segment's own reference, else its service's, else the default."""
        for wanted in (model, None):
            for seg in self.segments:
                if seg.service == service and seg.model == wanted:
                    return seg.reference
        return self.reference


class HysteresisConfig(Section):
    k: int = Field(default=2, ge=1)
    m: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _k_within_m(self) -> HysteresisConfig:
        if self.k > self.m:
            raise ValueError(f"k: must not exceed m ({self.m}), got: {self.k}")
        return self


class DriftConfig(WindowedConfig):
    interval: Duration = 900.0
    permutations: int = Field(default=1_000, ge=99, le=100_000)
    min_auc: float = Field(default=0.55, ge=0.5, le=1)  # effect gate of the MMD test
    min_novel_excess: float = Field(default=0.02, ge=0, le=1)  # effect gate of novelty
    hysteresis: HysteresisConfig = HysteresisConfig()
    self_check_interval: Duration = 6 * 3600.0
    explain: bool = True


class ToxicityConfig(WindowedConfig):
    interval: Duration = 300.0
    window: Duration = 900.0
    min_samples: int = Field(default=30, ge=10)
    model: str | None = None  # a Hugging Face text-classification model; None = shipped head
    toxic_labels: tuple[str, ...] = ()
    threshold: float | None = Field(default=None, gt=0, le=1)  # None = the scorer's own
    min_increase: float = Field(default=0.02, ge=0, le=1)
    top_examples: int = Field(default=3, ge=0, le=50)


class SloConfig(Section):
    availability: float = Field(default=0.99, gt=0, lt=1)  # share of calls without error
    latency_threshold: Duration = 10.0  # a call slower than this spends the latency budget
    latency_objective: float = Field(default=0.95, gt=0, lt=1)


class LatencyConfig(WindowedConfig):
    interval: Duration = 60.0
    window: Duration = 900.0
    min_samples: int = Field(default=30, ge=10)
    sample_cap: int = Field(default=20_000, ge=10)
    min_ratio: float = Field(default=1.2, ge=1)  # p95 must grow at least this much
    slo: SloConfig = SloConfig()


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CHECK = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:(>=|<=|==|!=|>|<)\s*"
                    r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?\s*$")
#: labels driftwatch sets itself; a rule's own labels may not replace them
RESERVED_LABELS = frozenset({"alertname", "severity", "service", "model", "direction", "job"})


def parse_check(text: str) -> tuple[str, str | None, float | None]:
    """(field, operator, number) of `field op number`, or (field, None, None) for a bare
    field that must be true (`anomalous`).

    :raises ValueError: naming the check.
    """
    match = _CHECK.match(text)
    if not match:
        raise ValueError(f"expected a check like 'ttft_p95_s > 3' or 'anomalous', got: {text!r}")
    field, op, number = match.groups()
    return field, op, None if number is None else float(number)


def _valid_check(text: str) -> str:
    parse_check(text)
    return text.strip()


def _when(value: Any) -> Any:
    """One check, a list of checks (all must hold), or a list of such lists (any group)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return ((value,),)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return (tuple(value),) if value else ()
        if all(isinstance(v, list | tuple) for v in value):
            return tuple(tuple(v) for v in value)
    raise ValueError("expected a check, a list of checks (all must hold) or a list of lists "
                     f"of checks (any list must hold), got: {value!r}")


Check = Annotated[str, AfterValidator(_valid_check)]
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]


class RuleConfig(Section):
    """One alert rule; its name (the key under `alerts.rules`) is the alertname.

    `kind: detector` holds when `when` holds on a segment's latest `detector` result:
    checks on the result (`anomalous`, `p_value`, `n_current`, ...) or its details
    (`toxic_rate`, `burn_rates.availability.1h`, ...). `for` is how many consecutive
    evaluations it must hold before firing; evaluations that see no new result do not count.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = True
    kind: Literal["detector", "traffic_absent", "job_stale", "spans_refused"] = "detector"
    detector: Literal["drift", "toxicity", "latency"] | None = None
    direction: Literal["prompt", "completion"] | None = None  # None: both
    scope: Literal["any", "service", "model"] = "any"  # whole services, models, or both
    when: Annotated[tuple[tuple[Check, ...], ...], BeforeValidator(_when)] = ()
    for_: int = Field(default=1, ge=1, le=100_000, alias="for")
    severity: Literal["page", "ticket"] = "ticket"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    stale_after: float = Field(default=3.0, gt=0)  # job_stale: job intervals without success

    @model_validator(mode="after")
    def _consistent(self) -> RuleConfig:
        if self.kind == "detector":
            if self.detector is None:
                raise ValueError("detector: required for a detector rule, got: None")
            if not self.when:
                raise ValueError("when: a detector rule needs a condition, e.g. 'anomalous', "
                                 "got: nothing")
        elif self.detector is not None or self.when or self.direction is not None:
            raise ValueError(f"a {self.kind} rule takes no detector, direction or when, "
                             f"got: {self.detector or self.direction or self.when!r}")
        if self.direction is not None and self.detector == "latency":
            raise ValueError(f"direction: latency results have none, got: {self.direction!r}")
        for key in [*self.labels, *self.annotations]:
            if not _NAME.match(key):
                raise ValueError(f"labels and annotations need names like runbook_url, "
                                 f"got: {key!r}")
        reserved = sorted(RESERVED_LABELS & set(self.labels))
        if reserved:
            raise ValueError(f"labels: {reserved[0]} is set by driftwatch, got: "
                             f"{self.labels[reserved[0]]!r}")
        return self


def default_rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEFAULT_RULES_YAML)
    return loaded


def _merge_rules(given: Any) -> Any:
    """The shipped rules with the user's merged over them by name (case-insensitively, so
    environment overrides, which are lower-cased, find them)."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return given  # validation names the error
    merged = default_rules()
    names = {name.lower(): name for name in merged}
    for key, value in given.items():
        name = names.get(str(key).lower(), str(key))
        base = merged.get(name, {})
        if value is False:
            value = {"enabled": False}
        if isinstance(value, dict):
            rule = {**base, **value}
            for nested in ("labels", "annotations"):
                if isinstance(base.get(nested), dict) and isinstance(value.get(nested), dict):
                    rule[nested] = {**base[nested], **value[nested]}
            if "for_" in value:
                rule.pop("for", None)
            merged[name] = rule
        else:
            merged[name] = value
    return merged


class RetryConfig(Section):
    attempts: int = Field(default=4, ge=1, le=20)  # tries per notification, the first included
    backoff: Duration = 1.0  # wait before the first retry; doubles each time
    max_backoff: Duration = 30.0  # longest wait, a receiver's Retry-After included
    timeout: Duration = 10.0  # per request


def _repeat_interval(seconds: float) -> float:
    # A floor, so that `repeat_interval: 4` (seconds, meant hours) cannot flood a channel.
    if seconds != 0 and seconds < 60:
        raise ValueError(f"expected 0 (never repeat) or at least 1m, got: {seconds:g}s")
    return seconds


RepeatInterval = Annotated[float, BeforeValidator(parse_duration), AfterValidator(
    _repeat_interval)]


class AlertmanagerTarget(Section):
    url: Url  # base URL, e.g. http://alertmanager:9093; alerts go to /api/v2/alerts


class WebhookTarget(Section):
    url: Url
    max_alerts: int = Field(default=0, ge=0)  # alerts per message; 0 = all
    send_resolved: bool = True
    repeat_interval: RepeatInterval = 4 * 3600.0  # remind while firing; 0 = never


class SlackTarget(Section):
    url: Url  # an incoming-webhook URL
    send_resolved: bool = True
    repeat_interval: RepeatInterval = 4 * 3600.0  # remind while firing; 0 = never


class PagerDutyTarget(Section):
    routing_key: str | None = Field(default=None, min_length=1)
    routing_key_file: ExistingFile | None = None
    url: Url = "https://events.pagerduty.com/v2/enqueue"
    send_resolved: bool = True
    # PagerDuty re-notifies by its escalation policy; a repeated trigger only re-opens an
    # incident resolved by hand while the alert still fires.
    repeat_interval: RepeatInterval = 0.0

    @model_validator(mode="after")
    def _one_key(self) -> PagerDutyTarget:
        if (self.routing_key is None) == (self.routing_key_file is None):
            raise ValueError("set routing_key or routing_key_file (exactly one), got: "
                             f"{'both' if self.routing_key else 'neither'}")
        return self

    def key(self) -> str:
        if self.routing_key_file:
            return self.routing_key_file.read_text().strip()
        return self.routing_key or ""


class NotifiersConfig(Section):
    alertmanager: tuple[AlertmanagerTarget, ...] = ()  # every one gets every alert (HA)
    webhook: tuple[WebhookTarget, ...] = ()
    slack: tuple[SlackTarget, ...] = ()
    pagerduty: tuple[PagerDutyTarget, ...] = ()
    retry: RetryConfig = RetryConfig()


class AlertsConfig(Section):
    """Rules evaluated on the latest detector results, and where their alerts go."""

    enabled: bool = True
    evaluation_interval: Duration = 60.0
    resend_delay: Duration = 60.0  # a firing alert is re-sent to Alertmanager this often
    resolved_retention: Duration = 900.0  # and a resolved one for this long
    external_url: Url | None = None  # how people reach this daemon; default its ops URL
    grafana_url: Url | None = None  # adds a dashboard_url annotation
    runbook_url: str | None = None  # adds runbook_url; "{alertname}" is replaced
    rules: dict[str, RuleConfig] = Field(
        default_factory=lambda: {name: RuleConfig.model_validate(raw)
                                 for name, raw in default_rules().items()})
    notifiers: NotifiersConfig = NotifiersConfig()

    @model_validator(mode="before")
    @classmethod
    def _with_default_rules(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rules" in data:
            return {**data, "rules": _merge_rules(data["rules"])}
        return data

    @model_validator(mode="after")
    def _rule_names(self) -> AlertsConfig:
        for name in self.rules:
            if not _NAME.match(name):
                raise ValueError(f"rules: a rule name is its alertname, like LLMPromptDrift, "
                                 f"got: {name!r}")
        return self

def _log_level(value: Any) -> str:
    level = str(value).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got: {value!r}")
    return level


class LogConfig(Section):
    level: Annotated[str, BeforeValidator(_log_level)] = "INFO"
    format: Literal["text", "json"] = "text"


def _collector_url(value: Any) -> str | None:
    if value is None or value == "":
        return None  # no push
    url = str(value).strip()
    try:
        parts = urlsplit(url)
        valid = (parts.scheme in ("http", "https") and bool(parts.hostname)
                 and not parts.query and not parts.fragment and parts.port != 0)
    except ValueError:  # a port that is not a number or out of range
        valid = False
    if not valid:
        raise ValueError(f"expected a URL like http://otel-collector:4318, got: {value!r}")
    return url


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _header_names(value: Any) -> Any:
    """Header names lower-cased (gRPC metadata keys must be), each checked."""
    if not isinstance(value, dict):
        return value  # validation names the error
    for key, text in value.items():
        if not _HEADER_NAME.match(str(key)):
            raise ValueError(f"expected header names like authorization, got: {key!r}")
        if isinstance(text, str) and ("\n" in text or "\r" in text):
            raise ValueError(f"{key}: a header value is one line, got: {text!r}")
    return {str(key).lower(): text for key, text in value.items()}


class ClientTlsConfig(Section):
    """What the push trusts (`ca_file`; default the system's roots) and, for mutual TLS, the
    certificate it presents."""

    ca_file: ExistingFile | None = None
    cert_file: ExistingFile | None = None
    key_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _pair(self) -> ClientTlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            alone = "cert_file" if self.cert_file else "key_file"
            raise ValueError(f"set cert_file and key_file together, got: {alone} alone")
        return self


class OtlpPushConfig(Section):
    """Pushing what /metrics shows to an OTLP collector; off while `endpoint` is unset.

    The keys are the OTEL_EXPORTER_OTLP_* ones: for http/protobuf an endpoint without a path
    gets /v1/metrics; https:// means TLS for both protocols.
    """

    endpoint: Annotated[str | None, BeforeValidator(_collector_url)] = None
    protocol: Literal["grpc", "http/protobuf"] = "http/protobuf"
    interval: Duration = 60.0  # OTEL_METRIC_EXPORT_INTERVAL
    timeout: Duration = 10.0  # per export, retries included
    headers: Annotated[dict[str, str], BeforeValidator(_header_names)] = Field(
        default_factory=dict)
    tls: ClientTlsConfig | None = None

    @model_validator(mode="after")
    def _fits_protocol(self) -> OtlpPushConfig:
        if self.endpoint is None:
            return self
        parts = urlsplit(self.endpoint)
        if self.protocol == "grpc" and parts.path not in ("", "/"):
            raise ValueError(f"endpoint: a gRPC endpoint has no path, got: {self.endpoint!r}")
        if self.tls is not None and parts.scheme != "https":
            raise ValueError(f"tls: needs an https:// endpoint, got: {self.endpoint!r}")
        return self


class MetricsConfig(Section):
    otlp: OtlpPushConfig = OtlpPushConfig()


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
    alerts: AlertsConfig = AlertsConfig()
    metrics: MetricsConfig = MetricsConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _references_within_retention(self) -> Config:
        for name in ("drift", "toxicity", "latency"):
            section: WindowedConfig = getattr(self, name)
            for where, ref in [("reference", section.reference), *(
                    (f"segments.{i}.reference", s.reference)
                    for i, s in enumerate(section.segments))]:
                if ref.mode == "trailing" and ref.offset + section.window > self.store.retention:
                    raise ValueError(
                        f"{name}.{where}.offset: a trailing reference must lie within "
                        f"store.retention ({self.store.retention:g}s), got: {ref.offset:g}s "
                        f"plus a {section.window:g}s window")
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
            loaded = yaml.safe_load(text)
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
