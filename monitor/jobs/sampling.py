"""One sample per segment, shared by every job, window and direction, nested in time.

Whether a call is in its segment's sample is decided by its span id alone (random by the
OpenTelemetry spec, so a uniform 64-bit key): it is in when the id, read as a big-endian
number, is below the segment's threshold `rate * 2**64`. The rate is chosen so that the
longest window any text-reading job looks at (`horizon`) holds about `cap` sampled calls, and
it moves in steps of a quarter octave with hysteresis, so steady traffic keeps the same rate
and consecutive runs re-read (and never re-embed) the same calls. A shorter window reads the
same calls as the longer one it lies in; the whole-service sample is contained in each of its
models' samples, because a model's rate is never below its service's.

The old design (each read takes the `cap` smallest span ids of its own window, so the sample
changes whenever the window slides) stays available as `nested=False`, for the capacity bench.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor.core.components import CallQuery, Store
from monitor.core.metrics import PREFIX
from monitor.core.records import Segment

STEPS_PER_OCTAVE = 4
#: a rate is kept while its window holds between these shares of the cap
_KEEP_LOW, _KEEP_HIGH = 0.5, 1.1
_FULL = 1 << 64


@dataclass(frozen=True, slots=True)
class SampleRate:
    """A segment's sampling rate, `2 ** (-step / STEPS_PER_OCTAVE)`; step 0 keeps every call."""

    step: int

    @property
    def rate(self) -> float:
        return float(2.0 ** (-self.step / STEPS_PER_OCTAVE))

    @property
    def threshold(self) -> int | None:
        """Calls whose span id (big-endian) is below this are in the sample; None: all."""
        return None if self.step == 0 else int(_FULL * self.rate)

    @classmethod
    def for_count(cls, count: int, cap: int) -> SampleRate:
        """The largest rate whose expected sample of `count` calls is at most `cap`."""
        if count <= cap:
            return cls(0)
        return cls(math.ceil(STEPS_PER_OCTAVE * math.log2(count / cap)))

    def keeps(self, count: int, cap: int) -> bool:
        """Whether this rate still gives a sample near the cap (hysteresis)."""
        expected = count * self.rate
        if self.step == 0:
            return expected <= cap * _KEEP_HIGH
        return cap * _KEEP_LOW <= expected <= cap * _KEEP_HIGH


class SampleRates:
    """The current rate of each segment, decided from its call count over the horizon.

    `floor` lowers every rate by that many steps on top (the background embedder raises it
    when it cannot keep up); rates are remembered per segment and cap between runs.
    """

    def __init__(self, store: Store, horizon_s: float, *, nested: bool = True) -> None:
        self._store = store
        self._horizon_ns = int(horizon_s * 1e9)
        self.nested = nested
        self._lock = threading.Lock()
        self._base: dict[tuple[str, str | None, int], SampleRate] = {}  # before shedding
        self._rates: dict[tuple[str, str | None, int], SampleRate] = {}
        self._latest: dict[tuple[str, str | None, int], int] = {}  # now_ns of the last read
        self._shed: dict[tuple[str, str | None], int] = {}

    def rate(self, segment: Segment, cap: int, now_ns: int) -> SampleRate:
        """The segment's rate for a read at `now_ns`; a model's is never below its service's.
        A split segment (one version) reads at its service's rate: its sample is the part of
        the service's sample its version made, texts the service's reads embed anyway."""
        if segment.split:
            return self._own(segment.service, None, cap, now_ns)
        own = self._own(segment.service, segment.model, cap, now_ns)
        if segment.model is not None:
            service = self._own(segment.service, None, cap, now_ns)
            own = SampleRate(min(own.step, service.step))
        return own

    @property
    def horizon_ns(self) -> int:
        return self._horizon_ns

    def segments(self) -> list[tuple[str, str | None]]:
        """The segments read so far, in a stable order."""
        with self._lock:
            keys = {(service, model) for service, model, _ in self._rates}
        return sorted(keys, key=lambda k: (k[0], k[1] or ""))

    def shed(self, segment: Segment, steps: int) -> None:
        """Lower the segment's rate by `steps` more (0 restores it): fewer texts to embed."""
        with self._lock:
            self._shed[segment.service, segment.model] = max(0, steps)

    def current(self) -> dict[tuple[str, str | None], float]:
        """The latest rate of every segment read so far, for the metrics."""
        with self._lock:
            return {(service, model): SampleRate(
                        base.step + self._shed.get((service, model), 0)
                        + self._shed.get((service, None), 0)).rate
                    for (service, model, _), base in self._base.items()}

    def _own(self, service: str, model: str | None, cap: int, now_ns: int) -> SampleRate:
        count = self._store.count(CallQuery(service=service, model=model,
                                            since_ns=now_ns - self._horizon_ns,
                                            until_ns=now_ns), slow_s=math.inf).calls
        key = (service, model, cap)
        with self._lock:
            base = self._base.get(key)
            if base is None or not base.keeps(count, cap):
                base = SampleRate.for_count(count, cap)
            shed = self._shed.get((service, model), 0) + self._shed.get((service, None), 0)
            rate = SampleRate(base.step + shed)
            if now_ns >= self._latest.get(key, 0):  # a past window (a trailing reference)
                self._latest[key] = now_ns          # reads the rate, never moves it
                self._base[key], self._rates[key] = base, rate
            return rate


def sampled(query: CallQuery, rate: SampleRate | None) -> CallQuery:
    """The query narrowed to the calls in the sample of `rate` (None: the old sample)."""
    if rate is None:
        return query
    return dataclasses.replace(query, sample_below=rate.threshold)


class SamplingRateCollector(Collector):
    """`driftwatch_detector_sampling_rate{service, model}`: the share of each segment's calls
    that its text-reading detectors sample (1: all), read at scrape time."""

    def __init__(self, rates: SampleRates) -> None:
        self._rates = rates

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            f"{PREFIX}_detector_sampling_rate",
            "Share of each segment's calls in its shared detector sample (1: every call)",
            labels=["service", "model"])
        for (service, model), rate in sorted(self._rates.current().items(),
                                             key=lambda kv: (kv[0][0], kv[0][1] or "")):
            family.add_metric([service, model or ""], rate)
        yield family
