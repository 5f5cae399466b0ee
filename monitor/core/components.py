"""Every interface between the daemon's parts, in one place.

A component is built from its config and handed what it feeds (its sink); it never looks
anything up. `stop()` must be safe to call without `start()` and more than once.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from monitor.core.evaluations import Evaluation, ScoredCall
from monitor.core.records import ContentEvent, Direction, LLMCall, Segment


class Component(Protocol):
    async def start(self) -> None:
        """Bind, open or spawn what the component needs; raise if it cannot."""

    async def stop(self) -> None:
        """Release everything; idempotent, and safe without start()."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteBatch:
    """What one group commit writes: calls, and content events and evaluations to join to
    calls."""

    calls: Sequence[LLMCall] = ()
    events: Sequence[ContentEvent] = ()
    evaluations: Sequence[Evaluation] = ()

    def __len__(self) -> int:
        return len(self.calls) + len(self.events) + len(self.evaluations)

    def text_bytes(self) -> int:
        """Memory held by its texts (prompts, completions, system prompts, event texts):
        what bounds the ingest queue beside its item count, since one call may carry
        hundreds of kilobytes of text and another a few bytes."""
        size = sys.getsizeof  # a str's exact size, in constant time
        total = 0
        for call in self.calls:
            for text in (call.system_prompt, call.prompt, call.completion):
                if text is not None:
                    total += size(text)
        for event in self.events:
            if event.text is not None:
                total += size(event.text)
        for evaluation in self.evaluations:
            if evaluation.explanation is not None:
                total += size(evaluation.explanation)
        return total


Fresh = tuple[bool, ...] | None  # per call, whether newly stored; None: all were


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    calls_inserted: int = 0  # new rows (re-delivered spans are not new)
    duplicates: int = 0  # spans already stored under the same (trace_id, span_id)
    wrappers: int = 0  # stored calls found to wrap another call of the same exchange
    events_joined: int = 0  # content events applied to a stored call
    events_pending: int = 0  # content events kept until their span arrives
    evaluations_joined: int = 0  # evaluations stored with their call (now or from pending)
    evaluations_pending: int = 0  # evaluations kept until their call arrives
    #: indexes in the batch's evaluations of those refused, not stored: their call was not
    #: stored and the store already held its most pending evaluations
    evaluations_refused: tuple[int, ...] = ()
    #: per call of the batch, in order, whether it is a new row (the first copy of a span
    #: the store did not hold); None when every call was new
    fresh: Fresh = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQuery:
    """Which calls to read: by service, model and start time (unix ns, [since, until))."""

    service: str | None = None
    model: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int | None = None
    newest_first: bool = False
    include_wrappers: bool = False
    #: only calls whose text in this direction was captured (non-empty)
    with_text: Direction | None = None
    #: with `limit`, a uniform random sample: calls ordered by span id (random by spec),
    #: so the same window always gives the same sample and cached embeddings are reused
    sample: bool = False
    #: only calls whose span id, read as a big-endian 64-bit number, is below this: a
    #: segment's nested sample (see monitor/jobs/sampling.py); None keeps every call
    sample_below: int | None = None
    #: only calls with a cost (`cost_usd` set when stored)
    priced: bool = False
    #: only calls of this `service.version` / configured variant (None: any)
    service_version: str | None = None
    variant: str | None = None

    @classmethod
    def of(cls, segment: Segment, **fields: Any) -> CallQuery:
        """The segment's calls (its service, model and split version), narrowed by
        `fields`."""
        version, variant = segment.versions
        return cls(service=segment.service, model=segment.model, service_version=version,
                   variant=variant, **fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """The numeric fields of one call, for latency statistics."""

    start_ns: int
    duration_s: float
    error: bool
    error_type: str | None
    ttft_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None = None  # None: the model has no price


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowCount:
    """Exact counts over a window, however many calls it holds."""

    calls: int
    errors: int
    slow: int  # calls whose duration exceeded the threshold asked for
    priced: int = 0  # calls with a cost
    usd: float = 0.0  # their cost, added up


VersionKey = Literal["model", "service_version", "variant"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueSeen:
    """How often one model, version or variant of a service was seen, and when."""

    calls: int
    first_ns: int
    last_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStats:
    calls: int = 0
    pending_events: int = 0
    schema_version: int = 0
    pending_evaluations: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Store(ABC):
    """Durable storage of calls. `write` returns only after the batch is committed.

    Writes come from one thread at a time (the ingest writer); reads may come from any thread.
    """

    @abstractmethod
    def write(self, batch: WriteBatch) -> WriteResult:
        """Commit calls and content events in one transaction; idempotent on span identity.

        :raises StoreError: nothing of the batch was committed.
        """

    @abstractmethod
    def calls(self, query: CallQuery) -> list[LLMCall]:
        """Stored calls matching the query, by start time (wrappers left out unless asked)."""

    @abstractmethod
    def call_pages(self, query: CallQuery, page_size: int = 500) -> Iterator[list[LLMCall]]:
        """The same calls as `calls(query)` (not sampled), in order, read page by page, so
        an answer of any size takes the memory of one page."""

    @abstractmethod
    def timings(self, query: CallQuery) -> list[Timing]:
        """The numeric fields of the matching calls (honours `limit` and `sample`)."""

    @abstractmethod
    def costs(self, query: CallQuery) -> list[float]:
        """The cost in USD of the matching calls that have one (honours `limit` and
        `sample`)."""

    @abstractmethod
    def count(self, query: CallQuery, *, slow_s: float) -> WindowCount:
        """Count the matching calls, the errors among them, those slower than `slow_s`, and
        those with a cost and what they cost."""

    @abstractmethod
    def minute_counts(self, segment: Segment, since_ns: int, until_ns: int, *,
                      slow_s: float) -> dict[int, WindowCount]:
        """`count` of a segment's calls per whole minute of [since_ns, until_ns), keyed by
        minute (start_ns // 60 s); minutes without calls are absent."""

    @abstractmethod
    def segments(self, since_ns: int | None = None) -> list[Segment]:
        """Every (service, model) with calls since the given time."""

    @abstractmethod
    def segment_calls(self, since_ns: int | None = None) -> dict[Segment, int]:
        """Every (service, model) with calls since the given time, and how many."""

    @abstractmethod
    def has_call(self, trace_id: str | None, span_id: str | None,
                 response_id: str | None) -> bool:
        """Whether a stored call has these span ids (hex), or else this response id."""

    @abstractmethod
    def evaluation_names(self, segment: Segment, since_ns: int,
                         until_ns: int) -> dict[str, int]:
        """Every evaluation name of the segment's calls that started in [since, until), and
        how many evaluations each has."""

    @abstractmethod
    def scored_calls(self, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                     limit: int) -> list[ScoredCall]:
        """The segment's evaluations called `name` of calls that started in the window, the
        newest `limit` (without texts)."""

    @abstractmethod
    def worst_scored(self, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                     pass_labels: Sequence[str], limit: int) -> list[ScoredCall]:
        """The lowest-scored of them (unscored ones without a passing label next), with
        their calls' prompts and completions, for examples."""

    @abstractmethod
    def side_evaluation_names(self, query: CallQuery, *, limit: int) -> dict[str, int]:
        """The evaluation names of the calls `query` selects (service, model, version,
        variant and window; `limit` and `sample` ignored), each with how many evaluations,
        the `limit` most common."""

    @abstractmethod
    def side_evaluations(self, query: CallQuery, name: str, *, limit: int) -> list[ScoredCall]:
        """A uniform sample of at most `limit` evaluations called `name` of those calls
        (without texts)."""

    @abstractmethod
    def values_seen(self, service: str, key: VersionKey, since_ns: int | None = None,
                    ) -> dict[str, ValueSeen]:
        """The values of `key` (`model`, `service_version` or `variant`) among a service's
        calls since the given time, each with its calls and first and last start."""

    @abstractmethod
    def delete_before(self, cutoff_ns: int, batch_size: int) -> int:
        """Delete calls (and their evaluations) and stale pending events older than the
        cutoff, in small transactions so writers are never blocked for long; return the rows
        deleted."""

    @abstractmethod
    def expire_pending(self, cutoff_ns: int) -> int:
        """Drop content events and evaluations received before the cutoff whose call never
        came."""

    @abstractmethod
    def stats(self) -> StoreStats:
        """Counts for /metrics and `driftwatch status`."""

    @abstractmethod
    def check_writable(self) -> None:
        """Raise StoreError unless a write would succeed now (for /readyz)."""

    @abstractmethod
    def close(self) -> None:
        """Close connections; idempotent."""


class CallSink(Protocol):
    """Where the collectors hand what they extracted; resolves once it is durable."""

    async def submit(self, batch: WriteBatch) -> Fresh:
        """Queue the batch and wait for its commit; which of its calls were new (`Fresh`).

        :raises Overloaded: the queue is full; nothing was queued.
        """
