"""Texts of a window for the embedding detectors: a uniform sample, embedded once.

The reference of a pinned or automatic baseline is frozen the first time it is used
(texts, their embeddings, and their toxicity scores when a scorer asks), so it survives the
retention of its calls and is never embedded again. Current and trailing windows are read
from the store each run, in the segment's shared nested sample (monitor/jobs/sampling.py), so
consecutive runs read mostly the same calls; their embeddings come from the cache (filled
ahead by monitor/jobs/prefetch.py).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from detectors.embedder import Embedder
from monitor.core.components import Store
from monitor.core.records import Direction, Segment
from monitor.jobs.references import Reference, Window
from monitor.jobs.sampling import SampleRates, sampled
from monitor.store.history import BaselineSample, SampleKind, SqliteHistory

SAMPLE_KIND: dict[Direction, SampleKind] = {Direction.PROMPT: "prompt",
                                             Direction.COMPLETION: "completion"}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TextSample:
    """Texts of one segment, direction and window, with one embedding row per text."""

    texts: tuple[str, ...]
    vectors: np.ndarray  # float32, L2-normalised
    #: share of the window's calls in the segment's nested sample (1: every call); None for
    #: a frozen baseline sample or the old per-window sample
    sampling_rate: float | None = None

    def __len__(self) -> int:
        return len(self.texts)


class TextSampler:
    """Reads, samples and embeds the texts of windows. The embedder is shared by every job,
    so calls to it are serialised: two jobs never compete for the CPU embedding at once."""

    def __init__(self, store: Store, history: SqliteHistory, embedder: Embedder,
                 rates: SampleRates | None = None) -> None:
        """`rates`: the segments' shared nested samples; None reads the old per-window
        sample (the `cap` smallest span ids of each window)."""
        self._store = store
        self.rates = rates
        self._history = history
        self._embedder = embedder
        self._embed_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def cpu(self) -> threading.Lock:
        """Held while a model runs on the CPU; other model work (a scorer) takes it too."""
        return self._embed_lock

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._embed_lock:
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            return self._embedder.embed(texts)

    def window(self, segment: Segment, direction: Direction, window: Window,
               cap: int) -> TextSample:
        query = window.query(segment, with_text=direction, limit=cap)
        rate = None
        if self.rates is not None and self.rates.nested:
            # the LIMIT stays as a bound: past it, the smallest keys, still a nested sample
            sample = self.rates.rate(segment, cap, window.end_ns)
            query, rate = sampled(query, sample), sample.rate
        calls = self._store.calls(query)
        texts = tuple((c.prompt if direction is Direction.PROMPT else c.completion) or ""
                      for c in calls)
        return TextSample(texts=texts, vectors=self.embed(texts), sampling_rate=rate)

    def reference(self, segment: Segment, direction: Direction, reference: Reference,
                  cap: int) -> TextSample | None:
        """None when the segment has no reference window yet."""
        if reference.window is None:
            return None
        if reference.baseline is None:
            return self.window(segment, direction, reference.window, cap)
        frozen = self.frozen(segment, direction, reference, cap)
        vectors = frozen.vectors if frozen.vectors is not None else np.zeros((0, 0))
        return TextSample(texts=frozen.texts, vectors=vectors)

    def frozen(self, segment: Segment, direction: Direction, reference: Reference,
               cap: int) -> BaselineSample:
        """The segment's sample of its baseline window, taken now if never taken or if the
        baseline changed since. When only the embedding model (or its truncation) changed,
        the frozen texts are embedded again: the baseline's calls may be past retention."""
        baseline, window = reference.baseline, reference.window
        if baseline is None or window is None:
            raise ValueError("only a baseline reference has a frozen sample")
        kind = SAMPLE_KIND[direction]
        found = self._history.sample(segment.service, segment.model, kind)
        if (found is not None and found.start_ns == baseline.start_ns
                and found.end_ns == baseline.end_ns):
            if found.embedding_model == self._embedder.cache_id:
                return found
            # scores were computed on the old vectors: the scorer computes them again
            again = BaselineSample(kind=kind, start_ns=found.start_ns, end_ns=found.end_ns,
                                   texts=found.texts, embedding_model=self._embedder.cache_id,
                                   vectors=self.embed(found.texts))
            self._history.save_sample(segment.service, segment.model, again)
            return again
        sample = self.window(segment, direction, window, cap)
        frozen = BaselineSample(kind=kind, start_ns=baseline.start_ns, end_ns=baseline.end_ns,
                                texts=sample.texts, embedding_model=self._embedder.cache_id,
                                vectors=sample.vectors)
        self._history.save_sample(segment.service, segment.model, frozen)
        return frozen
