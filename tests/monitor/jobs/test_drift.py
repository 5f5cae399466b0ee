"""The drift job on a real store: customer questions (banking77) where a topic absent from
the pinned baseline takes half of the current window. Texts are embedded by a working
bag-of-words embedder (hashed word counts), so the job runs in a second without a model;
the real model is exercised by test_detection."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from detectors.embedder import Embedder
from monitor.core.components import WriteBatch
from monitor.core.records import DetectorResult, Direction, LLMCall
from monitor.daemon import DETECTORS
from monitor.jobs.config import DriftConfig
from monitor.jobs.drift.details import DriftDetails
from monitor.jobs.drift.job import DriftJob
from monitor.jobs.plugin import details_readers
from monitor.jobs.references import References
from monitor.jobs.texts import TextSampler
from monitor.store.history import Baseline, SqliteHistory
from monitor.store.sqlite import SqliteStore
from tests.texts import rows

HOUR = 3600 * 10**9
T0 = 1_700_000_000_000_000_000
NOW = T0 + 4 * HOUR
NEW_TOPIC = "card_payments_refunds"


class WordHashEmbedder(Embedder):
    """Each word hashed into one of 1024 dimensions; rows L2-normalised."""

    model_id = "word-hash-1024"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 1024), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z']+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=2).digest()
                out[i, int.from_bytes(digest) % 1024] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def calls(prompts: Sequence[str], *, start: int, service: str = "bot") -> list[LLMCall]:
    every = HOUR // (len(prompts) + 1)
    return [LLMCall(trace_id=f"{start + i:032x}", span_id=f"{i + 1:016x}",
                    parent_span_id=None, service=service, provider="openai",
                    request_model="gpt-4o", response_model="gpt-4o", operation="chat",
                    start_ns=start + i * every, duration_s=1.0, prompt=prompt,
                    completion="Thanks for asking, here is what I found.")
            for i, prompt in enumerate(prompts)]


Parts = tuple[References, TextSampler, SqliteHistory]


def with_calls(tmp_path: Path, *more: LLMCall) -> Iterator[Parts]:
    rng = random.Random(7)
    questions = rows("banking77")
    usual = [r["text"] for r in questions if r["group"] != NEW_TOPIC]
    novel = [r["text"] for r in questions if r["group"] == NEW_TOPIC]
    store = SqliteStore(tmp_path / "driftwatch.db")
    store.write(WriteBatch(calls=[
        *calls(rng.sample(usual, 200), start=T0),
        *calls(rng.sample(usual, 80) + rng.sample(novel, 120), start=NOW - HOUR), *more]))
    history = SqliteHistory(store.path, details=details_readers(DETECTORS))
    for service in {c.service for c in more} | {"bot"}:
        history.set_baseline(Baseline(service=service, model=None, start_ns=T0,
                                      end_ns=T0 + HOUR, source="pinned"))
    references = References(store, history, auto_window_s=HOUR, auto_min_calls=30)
    yield references, TextSampler(store, history, WordHashEmbedder()), history
    history.close()
    store.close()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    yield from with_calls(tmp_path)


@pytest.fixture
def with_degenerate_services(tmp_path: Path) -> Iterator[Parts]:
    """Beside "bot": "echo", whose every prompt is the one word "ok" (a one-hot vector:
    the windows' scatter matrix is zero), and "digits", whose prompts have no words (the
    hashing embedder returns zero vectors, which the tests refuse)."""
    yield from with_calls(
        tmp_path,
        *calls(["ok"] * 100, start=T0 + 1, service="echo"),
        *calls(["ok"] * 100, start=NOW - HOUR + 1, service="echo"),
        *calls(["42"] * 100, start=T0 + 2, service="digits"),
        *calls(["42"] * 100, start=NOW - HOUR + 2, service="digits"))


def prompts_of_the_service(parts: Parts, service: str = "bot",
                           **config: object) -> DetectorResult:
    [found] = [r for r in run(parts, **config) if r.service == service
               and r.model is None and r.direction is Direction.PROMPT]
    return found


def run(parts: Parts, **config: object) -> list[DetectorResult]:
    references, texts, history = parts
    section = DriftConfig.model_validate({"min_samples": 30,
                                          "hysteresis": {"k": 1, "m": 1}, **config})
    return DriftJob(section, references, texts, history).run(NOW)


def test_drift_names_the_clusters_that_moved_with_examples(parts: Parts) -> None:
    result = prompts_of_the_service(parts)
    details = DriftDetails.of(result.details)
    assert details.decision is True and result.anomalous is True
    grown = max(details.clusters, key=lambda c: c.share_current - c.share_reference)
    assert grown.share_current > grown.share_reference and "refund" in grown.keywords
    assert grown.examples and grown.example_window == "current"
    assert re.search(r"a cluster \([^)]*\brefund\b[^)]*\) went from", result.summary)
    assert DETECTORS["drift"].explanation(result)["explanation"]


def test_with_explain_off_drift_is_found_but_carries_no_clusters(parts: Parts) -> None:
    result = prompts_of_the_service(parts, explain=False)
    details = DriftDetails.of(result.details)
    assert details.decision is True and result.anomalous is True
    assert details.clusters == () and result.to_json()["details"]["clusters"] == []
    assert "a cluster (" not in result.summary
    assert DETECTORS["drift"].explanation(result) == {}, "an alert then quotes no texts"



def test_degenerate_segments_get_a_reason_and_the_others_their_results(
        with_degenerate_services: Parts) -> None:
    results = run(with_degenerate_services)
    by_service = {r.service: r for r in results
                  if r.model is None and r.direction is Direction.PROMPT}
    assert set(by_service) == {"bot", "echo", "digits"}
    assert by_service["bot"].anomalous is True, "the real shift is still found"
    echo = by_service["echo"]
    assert echo.anomalous is False and DriftDetails.of(echo.details).decision is False
    assert "every text in both windows is the same" in echo.summary
    digits = by_service["digits"]
    assert digits.anomalous is None and DriftDetails.of(digits.details).decision is None
    assert digits.summary.startswith("insufficient data for prompts of digits: the "
                                     "embeddings could not be tested")
