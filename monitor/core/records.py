"""The data that crosses module boundaries: one LLM call, content that arrives apart from it,
the segments calls are grouped by, and the detectors' results.

An `LLMCall` is what the collectors make of one OTLP span; a `ContentEvent` is the prompt or
completion text that some conventions put on log records instead of the span. Both are
immutable: the store joins them with `merge_content`, a pure function, whichever arrives first.
A `DetectorResult` carries its detector's own frozen `Details` (each detector's plugin
defines its type); `Segment.label` is the one way a segment is named to people.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple, Protocol


class CallStatus(StrEnum):
    OK = "ok"
    ERROR = "error"


class ContentSource(IntEnum):
    """Where a call's texts came from; a lower value wins when two sources disagree.

    The order is the research table's priority: OTel v1.37+ span attributes, then its
    operation.details log event, the v1.28-1.36 log events, the v1.26-1.27 span events,
    OpenInference, OpenLLMetry before 0.55, OpenLIT's legacy strings and raw request JSON.
    """

    OTEL_ATTRIBUTES = 0
    OTEL_DETAILS_EVENT = 1
    OTEL_LOG_EVENTS = 2
    OTEL_SPAN_EVENTS = 3
    OPENINFERENCE = 4
    OPENLLMETRY = 5
    OPENLIT = 6
    RAW_IO = 7
    NONE = 99


class LLMCall(NamedTuple):
    """One LLM call (chat, text completion or content generation) taken from a span.

    Text fields are None when the instrumentation did not capture them (or redacted them),
    never the empty string; `content_captured` says whether any of them is present.

    A NamedTuple rather than a frozen dataclass: it is as immutable, and it is the one record
    made per span and sent between the extraction workers and the daemon, where a tuple is
    built in a third and unpickled in a seventh of a frozen dataclass's time. Build it with
    keywords; change it with `_replace`.
    """

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str | None
    service: str
    provider: str | None
    request_model: str | None
    response_model: str | None
    operation: str
    start_ns: int  # unix nanoseconds
    duration_s: float
    status: CallStatus = CallStatus.OK
    error_type: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    streaming: bool | None = None
    ttft_s: float | None = None
    finish_reasons: tuple[str, ...] = ()
    system_prompt: str | None = None
    prompt: str | None = None
    completion: str | None = None
    content_source: ContentSource = ContentSource.NONE
    convention: str = "otel"
    # Input tokens read from the provider's prompt cache; part of `input_tokens` (OTel >= 1.27).
    cached_input_tokens: int | None = None
    # USD, from the configured price table when the call was stored; None when unpriced.
    cost_usd: float | None = None
    #: the provider's id of the response (`gen_ai.response.id`), bounded: how an evaluation
    #: that arrives without a span id finds its call
    response_id: str | None = None
    #: the resource's `service.version` (a deployment's release), cut to 128 characters
    service_version: str | None = None
    #: the value of the configured attribute (`ingest.variant_attribute`, e.g. a prompt
    #: template version), cut to 128 characters; None when unset or not configured
    variant: str | None = None

    @property
    def model(self) -> str | None:
        """The model that answered, or the one asked for when the response names none."""
        return self.response_model or self.request_model

    @property
    def start(self) -> datetime:
        return utc_datetime(self.start_ns)

    @property
    def content_captured(self) -> bool:
        return self.prompt is not None or self.completion is not None

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as its values and rebuilt by tuple.__new__: a NamedTuple's own way goes
        # through Python-level __getnewargs__ and __new__, twice the cost per call.
        return _llm_call_from_values, (tuple(self),)

    def to_json(self) -> dict[str, Any]:
        """The `driftwatch calls --json` object (docs/cli.md, "JSON output")."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "service": self.service,
            "provider": self.provider,
            "model": self.model,
            "request_model": self.request_model,
            "response_model": self.response_model,
            "operation": self.operation,
            "start": rfc3339(self.start_ns),
            "duration_s": self.duration_s,
            "status": self.status.value,
            "error_type": self.error_type,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "streaming": self.streaming,
            "ttft_s": self.ttft_s,
            "finish_reasons": list(self.finish_reasons),
            "system_prompt": self.system_prompt,
            "prompt": self.prompt,
            "completion": self.completion,
            "content_captured": self.content_captured,
            "content_source": self.content_source.name.lower(),
            "convention": self.convention,
            "cached_input_tokens": self.cached_input_tokens,
            "cost_usd": self.cost_usd,
            "response_id": self.response_id,
            "service_version": self.service_version,
            "variant": self.variant,
        }


def _llm_call_from_values(values: tuple[Any, ...]) -> LLMCall:
    return tuple.__new__(LLMCall, values)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentEvent:
    """Text for a call that arrived on a log record (OTel v1.28+ events, operation.details).

    `kind` is one of: "system", "user", "assistant", "tool" (one history message each),
    "choice" (one output choice, `index` says which) or "details" (the v1.37+ event that
    carries the whole exchange in `system_prompt`, `prompt` and `completion`).
    """

    trace_id: str
    span_id: str
    kind: str
    time_ns: int
    seq: int = 0  # position among events of the same time, as received
    text: str | None = None
    index: int = 0
    finish_reason: str | None = None
    system_prompt: str | None = None
    prompt: str | None = None
    completion: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContentEvent:
        return cls(**data)


def merge_content(call: LLMCall, events: Iterable[ContentEvent]) -> LLMCall:
    """Fill a call's texts from its log events, keeping span content of higher priority.

    A details event gives the whole exchange; the per-message events give the system prompt
    (all system messages, joined), the prompt (the last user message) and the completion
    (choice 0). Fields the call already holds from a better source are kept.
    """
    ordered = sorted(events, key=lambda e: (e.time_ns, e.seq))
    if not ordered:
        return call
    details = [e for e in ordered if e.kind == "details"]
    if details:
        d = details[-1]
        found = (d.system_prompt, d.prompt, d.completion)
        source = ContentSource.OTEL_DETAILS_EVENT
    else:
        systems = _dedup(e.text for e in ordered if e.kind == "system" and e.text)
        users = [e.text for e in ordered if e.kind == "user" and e.text]
        choices = [e for e in ordered if e.kind == "choice"]
        first_choice = min(choices, key=lambda e: e.index) if choices else None
        found = (
            "\n".join(systems) if systems else None,
            users[-1] if users else None,
            first_choice.text if first_choice else None,
        )
        source = ContentSource.OTEL_LOG_EVENTS
    reasons = call.finish_reasons or tuple(
        e.finish_reason for e in ordered if e.kind == "choice" and e.finish_reason
    )
    held = (call.system_prompt, call.prompt, call.completion)
    pairs = zip(found, held, strict=True)
    if source < call.content_source:  # the events outrank the span's own texts
        system, prompt, completion = (n if n is not None else o for n, o in pairs)
    else:
        system, prompt, completion = (o if o is not None else n for n, o in pairs)
    captured_any = any(v is not None for v in found)
    return call._replace(
        system_prompt=system,
        prompt=prompt,
        completion=completion,
        finish_reasons=reasons,
        content_source=min(source, call.content_source) if captured_any else call.content_source,
    )


def _dedup(texts: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for t in texts:
        seen.setdefault(t, None)
    return list(seen)


def utc_datetime(unix_ns: int) -> datetime:
    """An aware UTC datetime, exact to the microsecond (no float rounding)."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanos // 1000)


def rfc3339(unix_ns: int) -> str:
    """RFC 3339 in UTC with microseconds, e.g. 2026-11-22T07:42:56.123456Z."""
    return utc_datetime(unix_ns).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Direction(StrEnum):
    PROMPT = "prompt"  # the user's text, never the system prompt
    COMPLETION = "completion"


@dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """A (service, model) pair; model None means the whole service.

    `split` makes a whole service's segment one of its versions: `version=1.4.2` (the
    calls whose resource says that `service.version`) or `variant=t7` (those whose
    `ingest.variant_attribute` says so); None for every other segment (`jobs.split_by`).
    """

    service: str
    model: str | None = None
    split: str | None = None

    @property
    def label(self) -> str:
        """`service/model`, the service alone for the whole service, `service version=2`
        for one of its versions: how logs, summaries, alerts and the CLI name a segment."""
        if self.split:
            return f"{self.service} {self.split}"
        return f"{self.service}/{self.model}" if self.model else self.service

    @property
    def title(self) -> str:
        """The label, saying "(all models)" for the whole service: for headings."""
        return self.label if self.model or self.split else f"{self.service} (all models)"

    @property
    def whole(self) -> Segment:
        """The segment a split one is part of: its service's (itself when not split)."""
        return Segment(service=self.service, model=None) if self.split else self

    @property
    def versions(self) -> tuple[str | None, str | None]:
        """(service_version, variant) its calls must carry; (None, None) when not split."""
        key, _, value = (self.split or "").partition("=")
        return (value if key == "version" else None, value if key == "variant" else None)


class Details(Protocol):
    """A detector's own fields of one result: a frozen type per detector (its plugin says
    which), written out by `to_json` as the `details` object of `driftwatch status --json`."""

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RawDetails:
    """Details kept as stored: those of a detector this daemon does not know (a row of a
    detector since removed) or that no longer read as its type. Shown as they were stored."""

    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.data))


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorResult:
    """One detector's verdict on one segment (and direction) for one window.

    `anomalous` is None when there was too little data to decide ("insufficient data",
    never "no drift"). `details` is the detector's own frozen type (for drift, the
    `clusters` that moved, with their examples); texts in it are redacted.
    """

    detector: str  # a plugin's name: the daemon's DETECTORS table lists them
    service: str
    model: str | None  # None = the whole service
    direction: Direction | None  # None for latency
    window_start_ns: int
    window_end_ns: int
    n_reference: int
    n_current: int
    statistic: float | None
    p_value: float | None
    anomalous: bool | None
    summary: str
    details: Details = dataclasses.field(default_factory=RawDetails)
    computed_ns: int = 0
    id: int | None = None  # assigned when the result is stored
    #: the evaluation's name, for `evaluation` results: a segment has one result per
    #: evaluation name, as it has one per direction for drift (None for other detectors)
    evaluation: str | None = None
    #: the version a split segment's result is about (`version=1.4.2`, `variant=t7`);
    #: None for every other result (`Segment.split`)
    split: str | None = None

    @property
    def segment(self) -> Segment:
        return Segment(service=self.service, model=self.model, split=self.split)

    def to_json(self) -> dict[str, Any]:
        """The `driftwatch status --json` object (docs/cli.md, "JSON output")."""
        return {
            "id": self.id,
            "detector": self.detector,
            "service": self.service,
            "model": self.model,
            "split": self.split,
            "direction": self.direction.value if self.direction else None,
            "window_start": rfc3339(self.window_start_ns),
            "window_end": rfc3339(self.window_end_ns),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "anomalous": self.anomalous,
            "summary": self.summary,
            "details": self.details.to_json(),
            "computed_at": rfc3339(self.computed_ns) if self.computed_ns else None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfCheckRecord:
    """One drift self-check: the false alarm rate of the test on same-mix splits of a
    segment's reference."""

    service: str
    model: str | None
    direction: Direction
    computed_ns: int
    splits: int
    false_alarm_rate: float | None
