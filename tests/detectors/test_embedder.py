"""Embedders: the text-hash cache in front of any embedder, and the local MiniLM model's
truncation and load errors. Cache logic runs against a small counting embedder; one test
puts the real model behind the cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from detectors.embedder import (
    CachedEmbedder,
    CacheStats,
    Embedder,
    LocalEmbedder,
    MemoryCache,
    text_key,
)
from monitor.core.errors import ConfigError
from tests.texts import banking_prompts


class CountingEmbedder(Embedder):
    """Deterministic 8-wide vectors from the text's hash; records every batch it embeds."""

    def __init__(self, model_id: str = "counting") -> None:
        self.model_id = model_id
        self.batches: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        rows = [np.frombuffer(text_key(t), dtype=np.uint8)[:8].astype(np.float32) + 1
                for t in texts]
        return np.asarray(rows) / np.linalg.norm(rows, axis=1, keepdims=True)

    @property
    def embedded(self) -> list[str]:
        return [t for batch in self.batches for t in batch]


def test_text_key_is_a_16_byte_digest_of_the_text() -> None:
    assert len(text_key("hello")) == 16
    assert text_key("hello") == text_key("hello")
    assert text_key("hello") != text_key("hello ")
    assert len(text_key("\ud800 lone surrogate from a JSON body")) == 16


def test_memory_cache_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_items=2)
    a, b, c = (np.full(4, v, dtype=np.float16) for v in (1, 2, 3))
    cache.put("m", {b"a": a, b"b": b})
    assert set(cache.get("m", [b"a"])) == {b"a"}  # touching a makes b the oldest
    cache.put("m", {b"c": c})
    assert set(cache.get("m", [b"a", b"b", b"c"])) == {b"a", b"c"}
    assert len(cache) == 2


def test_memory_cache_keeps_models_apart() -> None:
    cache = MemoryCache(max_items=10)
    cache.put("model-a", {b"k": np.ones(4, dtype=np.float16)})
    assert cache.get("model-b", [b"k"]) == {}


def test_memory_cache_size_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"max_items: must be positive, got: 0"):
        MemoryCache(max_items=0)


def test_repeated_texts_are_embedded_once() -> None:
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, MemoryCache(max_items=100))
    texts = ["retry me", "template A", "retry me", "retry me", "template B"]

    first = embedder.embed(texts)
    second = embedder.embed(["template B", "retry me"])

    assert sorted(inner.embedded) == ["retry me", "template A", "template B"]
    np.testing.assert_array_equal(first[0], first[2])
    np.testing.assert_array_equal(second, first[[4, 0]])  # input order, hit or miss
    assert embedder.stats == CacheStats(hits=4, misses=3)
    assert embedder.stats.hit_rate == pytest.approx(4 / 7)


def test_rows_come_back_float32_unit_and_stored_float16() -> None:
    cache = MemoryCache(max_items=100)
    embedder = CachedEmbedder(CountingEmbedder(), cache)

    rows = embedder.embed(["a", "b"])

    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)
    stored = cache.get("counting", [text_key("a")])[text_key("a")]
    assert stored.dtype == np.float16


def test_misses_are_embedded_in_batches() -> None:
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, MemoryCache(max_items=100), batch_size=4)
    embedder.embed([f"text {i}" for i in range(3)])

    embedder.embed([f"text {i}" for i in range(10)])

    assert [len(b) for b in inner.batches] == [3, 4, 3]


def test_an_evicted_text_is_embedded_again() -> None:
    inner = CountingEmbedder()
    embedder = CachedEmbedder(inner, MemoryCache(max_items=2))
    embedder.embed(["a", "b", "c"])

    embedder.embed(["a"])

    assert inner.embedded == ["a", "b", "c", "a"]


def test_no_texts_embed_nothing() -> None:
    inner = CountingEmbedder()
    assert CachedEmbedder(inner, MemoryCache(max_items=1)).embed([]).shape[0] == 0
    assert inner.batches == []


@pytest.fixture(scope="module")
def minilm() -> LocalEmbedder:
    embedder = LocalEmbedder(max_seq_length=64)
    embedder.load()
    return embedder


def test_local_model_behind_the_cache_matches_it_uncached(minilm: LocalEmbedder) -> None:
    texts = banking_prompts(20)
    cached = CachedEmbedder(minilm, MemoryCache(max_items=100))

    rows = cached.embed(texts + texts[:5])

    assert rows.shape == (25, 384)
    cosine = np.sum(rows[:20] * minilm.embed(texts), axis=1)
    assert cosine.min() > 0.9999  # float16 storage loses nothing that matters
    assert cached.stats == CacheStats(hits=5, misses=20)


def test_local_model_truncates_at_max_seq_length(minilm: LocalEmbedder) -> None:
    opening = " ".join(banking_prompts(12))  # well past 64 word pieces, under 1,000 characters
    endings = [opening + " Also, my card was stolen.", opening + " Thanks, that is all."]

    rows = minilm.embed([*endings, endings[0] * 100])

    assert minilm.max_seq_length == 64
    np.testing.assert_allclose(rows[0], rows[1], atol=1e-6)
    np.testing.assert_allclose(rows[0], rows[2], atol=1e-6)  # cut before tokenising too


def test_settings_that_change_vectors_change_the_cache_id(minilm: LocalEmbedder) -> None:
    assert LocalEmbedder().cache_id == "all-MiniLM-L6-v2"
    assert minilm.cache_id == "all-MiniLM-L6-v2@64"
    assert CachedEmbedder(minilm, MemoryCache(max_items=1)).cache_id == minilm.cache_id


def test_a_model_that_cannot_be_loaded_names_the_fix(tmp_path: Path) -> None:
    embedder = LocalEmbedder(f"{tmp_path}/no-such-model")
    with pytest.raises(ConfigError, match=r"embedding\.model: cannot load .*no-such-model.*"
                                          r"local directory.*embedding\.remote\.url"):
        embedder.load()


def test_max_seq_length_past_the_model_positions_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"max_seq_length: .*512 positions, got: 4096"):
        LocalEmbedder(max_seq_length=4096).load()
