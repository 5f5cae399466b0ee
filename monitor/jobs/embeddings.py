"""The daemon's embedder: the configured model behind a two-tier cache (an in-memory LRU in
front of the vectors persisted in the store), so a text is embedded once, ever, per model."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from detectors.embedder import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    LocalEmbedder,
    MemoryCache,
    RemoteEmbedder,
)
from detectors.toxicity import LogisticHeadScorer, Scorer
from monitor.jobs.config import EmbeddingConfig

log = logging.getLogger(__name__)


class TieredCache:
    """Reads the fast tier first, then the slow one (promoting what it found); writes both."""

    def __init__(self, fast: EmbeddingCache, slow: EmbeddingCache) -> None:
        self._fast = fast
        self._slow = slow

    def get(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found = self._fast.get(model_id, keys)
        missing = [k for k in keys if k not in found]
        if missing:
            slow = self._slow.get(model_id, missing)
            if slow:
                self._fast.put(model_id, slow)
                found.update(slow)
        return found

    def put(self, model_id: str, items: Mapping[bytes, np.ndarray]) -> None:
        self._fast.put(model_id, items)
        self._slow.put(model_id, items)


def build_embedder(config: EmbeddingConfig, persisted: EmbeddingCache) -> CachedEmbedder:
    inner: Embedder
    if config.remote is not None:
        remote = config.remote
        inner = RemoteEmbedder(remote.url, remote.model, api_key=remote.api_key,
                               batch_size=config.batch_size, timeout_s=remote.timeout)
    else:
        inner = LocalEmbedder(config.model, batch_size=config.batch_size,
                              max_seq_length=config.max_seq_length)
    cache: EmbeddingCache = persisted
    if config.cache_items:
        cache = TieredCache(MemoryCache(config.cache_items), persisted)
    return CachedEmbedder(inner, cache)


def limit_threads(threads: int, *, models: Sequence[Embedder | Scorer]) -> None:
    """Keep the models and the statistics' BLAS to `threads` CPU threads, so ingest keeps
    the other cores. (OpenBLAS spinning on every core was measured 70x slower per solve on
    a busy 2-core machine than one thread.) The numpy embedder's products run on that BLAS.
    PyTorch is imported only when one of `models` runs on it: with the default embedding
    model and toxicity head it never is, saving its ~245 MB."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if any(needs_torch(m) for m in models):
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(threads)
    log.info("detectors limited to %d CPU thread(s)", threads)


def needs_torch(model: Embedder | Scorer) -> bool:
    """An embedder says so itself; the logistic head scores the vectors of the daemon's
    embedder (itself in the list), so only a transformers classifier needs torch."""
    if isinstance(model, Embedder):
        return model.uses_torch
    return not isinstance(model, LogisticHeadScorer)
