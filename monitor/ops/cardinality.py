"""A bound on the label sets of each exported metric family, as the OpenTelemetry SDK keeps
one (its default: 2,000 attribute sets per metric).

Labels such as service, model and error type come from the wire; an app that names a
service per tenant or a model per fine-tune would otherwise grow /metrics without end,
until Prometheus drops the target past its `sample_limit`. The first `limit` label sets of
a family are kept as they are; measurements of any later one go to a single overflow series
labelled `otel_metric_overflow="true"` (the name the OpenTelemetry metrics SDK spec uses),
so totals stay right while the breakdown stops growing. Each family's overflowing label sets
are counted, and the first overflow of a family is logged once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Hashable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

log = logging.getLogger(__name__)

OVERFLOW_LABEL: Final = "otel_metric_overflow"
DEFAULT_LIMIT: Final = 2_000
# Refused label sets remembered so each is counted once (the result families meet the same
# ones at every scrape); past that many, an overcount beats unbounded memory.
_REMEMBER_REFUSED: Final = 10_000


class Overflow:
    """The key every label set past the limit maps to; compare with `is`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "OVERFLOW"


OVERFLOW: Final = Overflow()


class LabelSetLimit:
    """Admits up to `limit` distinct label sets of one family; later ones map to OVERFLOW.

    A label set once admitted stays admitted, so a busy series never moves into the overflow
    series because newcomers arrived: the first `limit` keep their breakdown. Thread-safe.
    """

    def __init__(self, family: str, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError(f"cardinality limit of {family}: must be at least 1, got: {limit}")
        self.family = family
        self.limit = limit
        self._admitted: set[Hashable] = set()
        self._refused: set[Hashable] = set()
        self._refused_count = 0
        self._lock = threading.Lock()

    def admit(self, key: Hashable) -> Hashable:
        """`key` itself while the family has room for it, else OVERFLOW."""
        if key in self._admitted:
            return key
        with self._lock:
            if key in self._admitted:
                return key
            if len(self._admitted) < self.limit:
                self._admitted.add(key)
                return key
            if not self._refused_count:
                log.warning("metric %s reached its limit of %d label sets; further ones are "
                            'recorded as %s="true" (metrics.cardinality_limit)', self.family,
                            self.limit, OVERFLOW_LABEL)
            if len(self._refused) < max(self.limit, _REMEMBER_REFUSED):
                if key not in self._refused:
                    self._refused.add(key)
                    self._refused_count += 1
            elif key not in self._refused:
                self._refused_count += 1  # past that, an overcount beats unbounded memory
            return OVERFLOW

    @property
    def overflowed(self) -> int:
        """Distinct label sets refused so far (exact up to 10,000 or `limit` of them)."""
        return self._refused_count

    def forget(self, keep: set[Hashable]) -> None:
        """Drop admitted label sets no longer exported (a family rebuilt from current state,
        such as the latest detector results), freeing their places."""
        with self._lock:
            self._admitted &= keep


class CardinalityLimits(Collector):
    """Every family's limit, one per family name, and the counter of what overflowed:
    `driftwatch_metric_label_sets_overflowed_total{metric}`."""

    def __init__(self, limit: int = DEFAULT_LIMIT, registry: CollectorRegistry | None = None
                 ) -> None:
        self.limit = limit
        self._families: dict[str, LabelSetLimit] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def of(self, family: str) -> LabelSetLimit:
        with self._lock:
            found = self._families.get(family)
            if found is None:
                found = self._families[family] = LabelSetLimit(family, self.limit)
            return found

    def describe(self) -> Iterator[Metric]:
        yield self._counter()

    def collect(self) -> Iterator[Metric]:
        counter = self._counter()
        with self._lock:
            families = list(self._families.values())
        for family in families:
            counter.add_metric([family.family], family.overflowed)
        yield counter

    @staticmethod
    def _counter() -> CounterMetricFamily:
        return CounterMetricFamily(
            "driftwatch_metric_label_sets_overflowed", "Label sets recorded into a family's "
            'otel_metric_overflow="true" series because the family reached '
            "metrics.cardinality_limit", labels=["metric"])


def overflow_sample(name: str, value: float, **extra: str) -> Sample:
    """A sample of the overflow series (only the overflow label, plus `le` for buckets)."""
    return Sample(name, {OVERFLOW_LABEL: "true", **extra}, value, None, None)


OTHER: Final = "_OTHER"
_LOW_CARDINALITY = re.compile(r"^[A-Za-z0-9_.\-/]{1,64}$")


# C0 controls, DEL, C1 controls and the bidirectional overrides, as monitor.cli.terminal
# shows them to a person.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def label_value(value: str) -> str:
    """A wire text as a label value: every control character (ESC, CR, newline, tab) and
    bidi override shown as a visible escape (`\\x1b`, `\\n`), so a name cannot rewrite the
    terminal or the dashboard that shows it; the exposition escapes quotes and backslashes
    itself."""
    return _CONTROL.sub(_escape, value)


def error_type_label(value: str) -> str:
    """`error.type` as a label: the conventions want a low-cardinality identifier (a class
    name, a status code, `timeout`); a value that reads like a message (spaces, punctuation,
    an address, over 64 characters) becomes `_OTHER`, as they say to do. The stored call
    keeps the full value for debugging."""
    return value if _LOW_CARDINALITY.match(value) else OTHER
