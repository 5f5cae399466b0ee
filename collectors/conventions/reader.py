"""The interface a convention's reader answers to, and the one table-driven reader behind it.

`SpanReader` says what an LLM span tells about its call: provider, models, tokens, streaming,
time to first token, finish reasons, texts, and which convention wrote it; its `Marks` tell
the classifier the convention's spans. Each convention module describes itself as a
`Vocabulary` (the attribute names it writes each field under and the places it keeps texts,
in priority order), and `AttributeReader.of` makes a reader of one or more vocabularies:
their names concatenated per field, first match wins, and their text sources ordered by
`ContentSource`, the research table's priority. Every method is pure, reads whatever type an
attribute holds, and never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from opentelemetry.proto.trace.v1 import trace_pb2

from collectors.attributes import (
    as_count,
    as_flag,
    as_label,
    as_seconds,
    attributes_dict,
    first,
)
from collectors.conventions.providers import normalise_provider, provider_from_address
from collectors.messages import Texts
from monitor.core.records import ContentSource

# What a span is; only LLM spans become calls.
LLM, EMBEDDINGS, TOOL, AGENT, RETRIEVAL, OTHER = (
    "llm", "embeddings", "tool", "agent", "retrieval", "other",
)
SpanKind = tuple[str, str]  # (kind, operation)
Attributes = Mapping[str, Any]


class SpanEvents(NamedTuple):
    """The few span events a reader uses, found in one pass over the span's events."""

    prompt: Any = None  # the prompt attribute of the content-prompt event
    completion: Any = None
    first_token_ns: int | None = None
    exception: trace_pb2.Span.Event | None = None


NO_EVENTS = SpanEvents()
NO_TEXTS = Texts()
_NONE = ContentSource.NONE


class TextSource(NamedTuple):
    """One place a convention keeps a call's texts.

    `read` gets the span's attributes, or, when `prefixes` names some, only the attributes
    under them: one pass over the attributes then serves every flattened-message source. A
    source `on_events` finds nothing without the content span events, and is not asked then.
    """

    source: ContentSource
    convention: str
    read: Callable[[Attributes, SpanEvents], Texts | None]
    prefixes: tuple[str, ...] = ()
    on_events: bool = False


class Marks(NamedTuple):
    """What tells a convention's spans: any of `names` present, or a (name, value) of `values`."""

    names: frozenset[str] = frozenset()
    values: tuple[tuple[str, str], ...] = ()


NO_MARKS = Marks()


class Vocabulary(NamedTuple):
    """The attribute names one convention writes each field under, in its priority order."""

    provider: tuple[str, ...] = ()
    request_model: tuple[str, ...] = ()
    response_model: tuple[str, ...] = ()
    input_tokens: tuple[str, ...] = ()
    output_tokens: tuple[str, ...] = ()
    total_tokens: tuple[str, ...] = ()
    cached_input_tokens: tuple[str, ...] = ()  # prompt-cache reads, part of the input tokens
    streaming: tuple[str, ...] = ()
    ttft_seconds: tuple[str, ...] = ()
    ttft_milliseconds: tuple[str, ...] = ()
    first_token_events: frozenset[str] = frozenset()
    finish_reasons: tuple[str, ...] = ()  # string lists
    finish_reason: tuple[str, ...] = ()  # one string, read when no list or message has any
    content_events: tuple[tuple[str, str], ...] = ()  # (event, attribute): prompt, completion
    sources: tuple[TextSource, ...] = ()


class SpanReader(Protocol):
    """What one convention's span says about an LLM call; None where it says nothing."""

    @property
    def name(self) -> str: ...

    @property
    def marks(self) -> Marks:
        """What tells this convention's spans (the classifier looks)."""
        ...

    def events(self, span: trace_pb2.Span) -> SpanEvents: ...

    def provider(self, attrs: Attributes) -> str | None: ...

    def models(self, attrs: Attributes) -> tuple[str | None, str | None]:
        """(requested, responding) model."""
        ...

    def tokens(self, attrs: Attributes) -> tuple[int | None, int | None, int | None]:
        """(input, output, total); the total is input + output when not given."""
        ...

    def cached_input_tokens(self, attrs: Attributes) -> int | None:
        """Input tokens read from the provider's prompt cache (counted in the input too)."""
        ...

    def streaming(self, attrs: Attributes) -> bool | None: ...

    def ttft_s(self, attrs: Attributes, events: SpanEvents, span: trace_pb2.Span) -> float | None:
        """Seconds from the span's start to the first token."""
        ...

    def texts(self, attrs: Attributes, events: SpanEvents) -> tuple[Texts, ContentSource]:
        """The first source that captured any text, its gaps filled from the sources after."""
        ...

    def finish_reasons(self, attrs: Attributes, texts: Texts) -> tuple[str, ...]: ...

    def convention(self, source: ContentSource) -> str:
        """The convention's name, given where the texts were found."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeReader:
    """A `SpanReader` made of vocabularies: names per field, first match wins."""

    name: str
    marks: Marks
    provider_keys: tuple[str, ...]
    request_model_keys: tuple[str, ...]
    response_model_keys: tuple[str, ...]
    input_token_keys: tuple[str, ...]
    output_token_keys: tuple[str, ...]
    total_token_keys: tuple[str, ...]
    cached_input_token_keys: tuple[str, ...]
    streaming_keys: tuple[str, ...]
    ttft_seconds_keys: tuple[str, ...]
    ttft_milliseconds_keys: tuple[str, ...]
    first_token_events: frozenset[str]
    finish_reasons_keys: tuple[str, ...]
    finish_reason_keys: tuple[str, ...]
    content_events: Mapping[str, tuple[int, str]]  # event name -> (0 prompt | 1 completion, key)
    sources: tuple[TextSource, ...]
    attribute_sources: tuple[TextSource, ...]  # those not on_events: most spans have none
    flattened_prefixes: tuple[str, ...]
    labels: Mapping[ContentSource, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        *vocabularies: Vocabulary,
        name: str,
        marks: Marks = NO_MARKS,
        by_source: bool = False,
    ) -> AttributeReader:
        """One reader of several vocabularies, each field's names in their order.

        With `by_source`, a call is put down to the convention whose source gave its texts
        (`name` when none did).
        """

        def names(pick: Callable[[Vocabulary], tuple[str, ...]]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(n for v in vocabularies for n in pick(v)))

        every = dict.fromkeys(s for v in vocabularies for s in v.sources)
        sources = sorted(every, key=lambda s: s.source)  # stable: ties keep their order
        events: dict[str, tuple[int, str]] = {}
        for v in vocabularies:
            for which, (event, key) in enumerate(v.content_events):
                events.setdefault(event, (which, key))
        return cls(
            name=name, marks=marks,
            provider_keys=names(lambda v: v.provider),
            request_model_keys=names(lambda v: v.request_model),
            response_model_keys=names(lambda v: v.response_model),
            input_token_keys=names(lambda v: v.input_tokens),
            output_token_keys=names(lambda v: v.output_tokens),
            total_token_keys=names(lambda v: v.total_tokens),
            cached_input_token_keys=names(lambda v: v.cached_input_tokens),
            streaming_keys=names(lambda v: v.streaming),
            ttft_seconds_keys=names(lambda v: v.ttft_seconds),
            ttft_milliseconds_keys=names(lambda v: v.ttft_milliseconds),
            first_token_events=frozenset().union(*(v.first_token_events for v in vocabularies)),
            finish_reasons_keys=names(lambda v: v.finish_reasons),
            finish_reason_keys=names(lambda v: v.finish_reason),
            content_events=events,
            sources=tuple(sources),
            attribute_sources=tuple(s for s in sources if not s.on_events),
            flattened_prefixes=tuple(dict.fromkeys(p for s in sources for p in s.prefixes)),
            labels={s.source: s.convention for s in sources} if by_source else {},
        )

    def events(self, span: trace_pb2.Span) -> SpanEvents:
        if not span.events:
            return NO_EVENTS
        found: list[Any] = [None, None]
        first_token_ns = exception = None
        content, first_token = self.content_events, self.first_token_events
        for event in span.events:
            name = event.name
            if name in content:
                which, key = content[name]
                found[which] = _event_attribute(event, key)
            elif name in first_token:
                t = event.time_unix_nano
                first_token_ns = t if first_token_ns is None else min(t, first_token_ns)
            elif name == "exception" and exception is None:
                exception = event
        return SpanEvents(found[0], found[1], first_token_ns, exception)

    def provider(self, attrs: Attributes) -> str | None:
        name = first(attrs, self.provider_keys, as_label)
        if name is not None:
            return normalise_provider(name)
        address = attrs.get("server.address")  # general OTel semconv, whatever the convention
        return provider_from_address(address) if isinstance(address, str) else None

    def models(self, attrs: Attributes) -> tuple[str | None, str | None]:
        return (first(attrs, self.request_model_keys, as_label),
                first(attrs, self.response_model_keys, as_label))

    def tokens(self, attrs: Attributes) -> tuple[int | None, int | None, int | None]:
        input_tokens = first(attrs, self.input_token_keys, as_count)
        output_tokens = first(attrs, self.output_token_keys, as_count)
        total = first(attrs, self.total_token_keys, as_count)
        if total is None and input_tokens is not None and output_tokens is not None:
            total = input_tokens + output_tokens
        return input_tokens, output_tokens, total

    def cached_input_tokens(self, attrs: Attributes) -> int | None:
        return first(attrs, self.cached_input_token_keys, as_count)

    def streaming(self, attrs: Attributes) -> bool | None:
        return first(attrs, self.streaming_keys, as_flag)

    def ttft_s(self, attrs: Attributes, events: SpanEvents, span: trace_pb2.Span) -> float | None:
        seconds = first(attrs, self.ttft_seconds_keys, as_seconds)
        if seconds is not None:
            return seconds
        # The SDK drops the oldest events first: with any dropped, the first token may be gone.
        first_token_ns = events.first_token_ns
        if first_token_ns is not None:
            start = span.start_time_unix_nano
            if first_token_ns >= start and span.dropped_events_count == 0:
                return (first_token_ns - start) / 1e9
        millis = first(attrs, self.ttft_milliseconds_keys, as_seconds)
        return millis / 1000 if millis is not None else None

    def texts(self, attrs: Attributes, events: SpanEvents) -> tuple[Texts, ContentSource]:
        best, source = NO_TEXTS, _NONE
        flat: Attributes | None = None
        on_events = events.prompt is not None or events.completion is not None
        for candidate in self.sources if on_events else self.attribute_sources:
            if candidate.prefixes:
                if flat is None:  # one pass for every flattened source; content-off spans
                    prefixes = self.flattened_prefixes  # then skip their scans altogether
                    flat = {k: v for k, v in attrs.items() if k.startswith(prefixes)}
                if not flat:
                    continue
                found = candidate.read(flat, events)
            else:
                found = candidate.read(attrs, events)
            if found is None:
                continue
            if source is _NONE:
                if found.prompt is not None and found.completion is not None:
                    return found, candidate.source  # the usual span: no gap to fill
                if not found.captured:
                    continue
                best, source = found, candidate.source
            elif found.captured:
                best = best.fill(found)
                if best.prompt is not None and best.completion is not None:
                    break
        return best, source

    def finish_reasons(self, attrs: Attributes, texts: Texts) -> tuple[str, ...]:
        reasons = None
        for key in self.finish_reasons_keys:
            reasons = attrs.get(key)
            if reasons is not None:
                break
        if isinstance(reasons, str):
            reasons = [reasons]
        found = _labels(reasons) if isinstance(reasons, list) else ()
        if found or texts.finish_reasons:
            return found or _labels(texts.finish_reasons)
        single = first(attrs, self.finish_reason_keys, as_label)
        return (single,) if single else ()

    def convention(self, source: ContentSource) -> str:
        return self.labels.get(source, self.name)


def _event_attribute(event: trace_pb2.Span.Event, key: str) -> Any:
    return attributes_dict(event.attributes).get(key)


def _labels(values: Iterable[Any]) -> tuple[str, ...]:
    return tuple([label for label in map(as_label, values) if label is not None])
