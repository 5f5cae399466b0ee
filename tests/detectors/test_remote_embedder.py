"""RemoteEmbedder against a loopback OpenAI-compatible /v1/embeddings server: a small but
working embedding service (hashed bag of words), which records what it was sent and can be
told to shed load first, as a busy text-embeddings-inference does."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from detectors.embedder import RemoteEmbedder
from monitor.config import load_config
from monitor.core.errors import DetectorError
from monitor.core.http import RetryPolicy
from monitor.jobs.embeddings import build_embedder
from tests.loopback import LoopbackServer, Reply, Request

DIM = 64
FAST = RetryPolicy(attempts=3, backoff_s=0.05, max_backoff_s=0.2, timeout_s=5)


def bag_of_words(text: str) -> list[float]:
    vector = [0.0] * DIM
    for word in text.lower().split():
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
    return vector


class EmbeddingServer:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self.first: list[Reply] = []  # answered, in order, before any embedding
        self.fail_with: int | None = None
        self.drop_one = False
        self._server = LoopbackServer(self._handle)
        self.url = self._server.url

    def _handle(self, request: Request) -> Reply:
        body = json.loads(request.body)
        self.requests.append((request.headers, body))
        self.arrivals.append(time.monotonic())
        if request.path != "/v1/embeddings":
            return _json(404, {"error": "not found"})
        if self.first:
            return self.first.pop(0)
        if self.fail_with:
            return _json(self.fail_with, {"error": "model overloaded"})
        texts = body["input"][: -1 if self.drop_one else None]
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(t)}
                for i, t in reversed(list(enumerate(texts)))]  # any order is valid
        return _json(200, {"object": "list", "data": data, "model": body["model"]})

    def close(self) -> None:
        self._server.close()


def _json(status: int, payload: dict[str, Any], **headers: str) -> Reply:
    return Reply(status, json.dumps(payload).encode(),
                 {"Content-Type": "application/json", **headers})


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    running = EmbeddingServer()
    yield running
    running.close()


TEXTS = ["my card was declined", "how do I reset my pin", "card declined at the shop"]


def test_rows_come_back_normalised_in_input_order_over_several_batches(
        server: EmbeddingServer) -> None:
    embedder = RemoteEmbedder(server.url, "bge-small", api_key="k" * 20, batch_size=2)
    rows = embedder.embed(TEXTS)
    expected = np.array([bag_of_words(t) for t in TEXTS])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    assert [len(body["input"]) for _, body in server.requests] == [2, 1]
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer " + "k" * 20 and body["model"] == "bge-small"


def test_a_server_error_names_the_endpoint_and_its_answer(server: EmbeddingServer) -> None:
    server.fail_with = 503
    with pytest.raises(DetectorError, match=r"/v1/embeddings answered 503: .*overloaded"):
        RemoteEmbedder(server.url, "bge-small", retry=FAST).embed(TEXTS)
    assert len(server.requests) == 3, "every attempt"


def test_a_server_shedding_load_is_waited_for(server: EmbeddingServer) -> None:
    server.first = [_json(503, {"error": "queue full"}, **{"Retry-After": "1"}),
                    _json(429, {"error": "rate limited"})]
    embedder = RemoteEmbedder(server.url, "bge-small", retry=RetryPolicy(
        attempts=3, backoff_s=0.05, max_backoff_s=5))
    rows = embedder.embed(TEXTS)
    assert rows.shape == (3, DIM) and len(server.requests) == 3
    assert server.arrivals[1] - server.arrivals[0] >= 1.0, "the server's Retry-After"
    assert server.requests[0][1] == server.requests[2][1], "the same batch, sent again"


def test_a_request_the_server_refuses_is_not_retried(server: EmbeddingServer) -> None:
    server.first = [_json(400, {"error": "input too long"})]
    with pytest.raises(DetectorError, match=r"answered 400: .*input too long"):
        RemoteEmbedder(server.url, "bge-small", retry=FAST).embed(TEXTS)
    assert len(server.requests) == 1


def test_a_short_answer_is_an_error_not_a_misaligned_row(server: EmbeddingServer) -> None:
    server.drop_one = True
    with pytest.raises(DetectorError, match="returned 2 vectors for 3 texts"):
        RemoteEmbedder(server.url, "bge-small").embed(TEXTS)


def test_an_unreachable_server_is_a_detector_error() -> None:
    with pytest.raises(DetectorError, match=r"failed: .*refused.* \(3 attempts\)"):
        RemoteEmbedder("http://127.0.0.1:9", "bge-small", retry=FAST).embed(TEXTS)


def test_the_config_builds_a_cached_remote_embedder(server: EmbeddingServer,
                                                    tmp_path: Any) -> None:
    from monitor.store.history import SqliteHistory
    from monitor.store.sqlite import SqliteStore

    config = load_config(environ={"DRIFTWATCH_EMBEDDING__REMOTE__URL": server.url,
                                  "DRIFTWATCH_EMBEDDING__REMOTE__MODEL": "bge-small"})
    SqliteStore(tmp_path / "d.db").close()
    history = SqliteHistory(tmp_path / "d.db")
    embedder = build_embedder(config.embedding, history)
    assert embedder.cache_id == "remote:bge-small"
    first = embedder.embed(TEXTS)
    again = embedder.embed(TEXTS)
    np.testing.assert_array_equal(first, again)
    assert len(server.requests) == 1, "the second call is served from the cache"
    history.close()
