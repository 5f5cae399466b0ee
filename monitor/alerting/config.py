"""The alert rules' and notifiers' config sections; a rule's checks are parsed by
`monitor.alerting.rules`, which gives them their meaning."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from monitor.alerting.default_rules import DEFAULT_RULES_YAML
from monitor.alerting.rules import parse_check
from monitor.core.config import (
    Duration,
    ExistingFile,
    Section,
    parse_duration,
)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: labels driftwatch sets itself; a rule's own labels may not replace them
RESERVED_LABELS = frozenset({"alertname", "severity", "service", "model", "split",
                             "direction", "job"})


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
    kind: Literal["detector", "traffic_absent", "job_stale", "job_behind", "spans_refused",
                  "disk_filling"] = "detector"
    detector: Literal["drift", "toxicity", "latency", "cost", "evaluation", "canary"] | None = None
    direction: Literal["prompt", "completion"] | None = None  # None: both
    scope: Literal["any", "service", "model"] = "any"  # whole services, models, or both
    when: Annotated[tuple[tuple[Check, ...], ...], BeforeValidator(_when)] = ()
    for_: int = Field(default=1, ge=1, le=100_000, alias="for")
    severity: Literal["page", "ticket"] = "ticket"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    stale_after: float = Field(default=3.0, gt=0)  # job_stale: job intervals without success
    #: job_behind: the share of its interval a job's last run took, above which it fires
    busy_share: float = Field(default=0.8, gt=0)
    # disk_filling: holds while the store's filesystem has less free than this many times
    # store.min_free_bytes, where ingest stops
    free_below: float = Field(default=4.0, gt=1)

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
