"""The segments' shared, nested samples: windows read the same calls, texts are embedded once."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from detectors.embedder import CachedEmbedder, Embedder, MemoryCache, RemoteEmbedder
from monitor.config import load_config
from monitor.core.components import WriteBatch
from monitor.core.records import Direction, LLMCall, Segment
from monitor.daemon import DETECTORS
from monitor.jobs.plugin import DetectorDeps, details_readers
from monitor.jobs.prefetch import Prefetcher
from monitor.jobs.references import References, Window
from monitor.jobs.sampling import SampleRate, SampleRates
from monitor.jobs.texts import TextSampler
from monitor.store.history import Baseline, SqliteHistory
from monitor.store.sqlite import SqliteStore
from tests.detectors.test_remote_embedder import DIM, EmbeddingServer
from tests.monitor.jobs.test_drift import WordHashEmbedder

S = 1_000_000_000
MINUTE = 60 * S
HOUR = 60 * MINUTE
T0 = 1_750_000_000 * S
CAP = 100


def steady(rng: random.Random, *, start: int, hours: int, per_minute: int,
           model: str = "gpt-4o", service: str = "bot") -> list[LLMCall]:
    """`per_minute` calls a minute with random span ids; each prompt says its start time."""
    every = MINUTE // per_minute
    return [LLMCall(trace_id=f"{rng.getrandbits(128):032x}", span_id=f"{rng.getrandbits(64):016x}",
                    parent_span_id=None, service=service, provider="openai",
                    request_model=model, response_model=model, operation="chat",
                    start_ns=start + i * every, duration_s=1.0,
                    prompt=f"{model} asked at {start + i * every}",
                    completion=f"answer number {i} from {model}")
            for i in range(hours * 60 * per_minute)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "driftwatch.db")
    rng = random.Random(11)
    store.write(WriteBatch(calls=[*steady(rng, start=T0, hours=3, per_minute=20),
                                  *steady(rng, start=T0, hours=3, per_minute=5, model="mini")]))
    yield store
    store.close()


@pytest.fixture
def history(store: SqliteStore) -> Iterator[SqliteHistory]:
    history = SqliteHistory(store.path, details=details_readers(DETECTORS))
    yield history
    history.close()


def sampler(store: SqliteStore, history: SqliteHistory, *, nested: bool) -> TextSampler:
    embedder = CachedEmbedder(WordHashEmbedder(), MemoryCache(1_000_000))
    return TextSampler(store, history, embedder, SampleRates(store, 3600, nested=nested))


def last(minutes: int, end: int) -> Window:
    return Window(start_ns=end - minutes * MINUTE, end_ns=end)


BOT = Segment(service="bot", model=None)


def test_a_shorter_window_reads_the_calls_the_longer_one_sampled_within_it(
        store: SqliteStore, history: SqliteHistory) -> None:
    texts = sampler(store, history, nested=True)
    end = T0 + 3 * HOUR
    hour = set(texts.window(BOT, Direction.PROMPT, last(60, end), CAP).texts)
    quarter = set(texts.window(BOT, Direction.PROMPT, last(15, end), CAP).texts)
    in_quarter = {t for t in hour if int(t.split()[-1]) >= end - 15 * MINUTE}
    assert 0.5 * CAP <= len(hour) <= CAP
    assert quarter == in_quarter


def test_a_model_sample_holds_every_call_the_service_sample_took_of_that_model(
        store: SqliteStore, history: SqliteHistory) -> None:
    texts = sampler(store, history, nested=True)
    end = T0 + 3 * HOUR
    service = texts.window(BOT, Direction.COMPLETION, last(60, end), CAP).texts
    mini = texts.window(Segment(service="bot", model="mini"), Direction.COMPLETION,
                        last(60, end), CAP).texts
    assert {t for t in service if t.endswith("mini")} <= set(mini)
    assert len(mini) > len([t for t in service if t.endswith("mini")])


def embedded_over_two_hours(texts: TextSampler) -> int:
    """Runs every 5 minutes reading the last 15 minutes; texts the model embedded."""
    for run in range(24):
        end = T0 + HOUR + run * 5 * MINUTE
        texts.window(BOT, Direction.PROMPT, last(15, end), CAP)
    return texts.embedder.stats.misses  # type: ignore[attr-defined, no-any-return]


def test_steady_traffic_embeds_a_few_times_fewer_texts_than_the_per_window_sample(
        store: SqliteStore, history: SqliteHistory) -> None:
    nested = embedded_over_two_hours(sampler(store, history, nested=True))
    per_window = embedded_over_two_hours(sampler(store, history, nested=False))
    assert nested <= 2 * CAP * 1.1  # about one cap an hour
    assert per_window >= 3 * nested


def test_the_rate_holds_under_steady_traffic_and_falls_in_quarter_octaves() -> None:
    rate = SampleRate.for_count(1200, 100)
    assert 0.84 * 100 < 1200 * rate.rate <= 100
    assert rate.keeps(1250, 100) and rate.keeps(1150, 100)
    assert not rate.keeps(3000, 100)
    assert SampleRate.for_count(80, 100) == SampleRate(0)
    assert SampleRate(0).threshold is None


def test_texts_embedded_ahead_are_read_by_the_next_run_without_embedding_again(
        store: SqliteStore, history: SqliteHistory) -> None:
    texts = sampler(store, history, nested=True)
    assert texts.rates is not None
    ahead = Prefetcher(store, texts, texts.rates, cap=CAP)
    first = T0 + 2 * HOUR
    texts.window(BOT, Direction.PROMPT, last(15, first), CAP)  # a job run: segment known
    embedded = ahead.run(first + 5 * MINUTE)["embedded"]
    misses = texts.embedder.stats.misses  # type: ignore[attr-defined]
    assert embedded > 0
    sample = texts.window(BOT, Direction.PROMPT, last(15, first + 5 * MINUTE), CAP)
    assert len(sample) > 0
    assert texts.embedder.stats.misses == misses  # type: ignore[attr-defined]
    assert ahead.stats(first + 5 * MINUTE).depth == 0


def test_a_flooding_segment_is_sampled_less_and_never_starves_the_others(
        tmp_path: Path) -> None:
    rng = random.Random(5)
    flood = steady(rng, start=T0, hours=1, per_minute=600, model="big")
    quiet = steady(rng, start=T0, hours=1, per_minute=2, service="quiet")
    store = SqliteStore(tmp_path / "d.db")
    store.write(WriteBatch(calls=[*quiet[:60], *flood[:6_000]]))  # the first 10 minutes
    history = SqliteHistory(store.path, details=details_readers(DETECTORS))
    texts = sampler(store, history, nested=True)
    assert texts.rates is not None
    ahead = Prefetcher(store, texts, texts.rates, cap=100_000, per_segment=300, budget=64)
    for segment in (Segment(service="bot", model=None), Segment(service="quiet", model=None)):
        texts.rates.rate(segment, 100_000, T0 + 10 * MINUTE)
    before = texts.rates.current()[("bot", None)]
    store.write(WriteBatch(calls=[*quiet[60:], *flood[6_000:]]))
    ahead.run(T0 + HOUR)
    rates = texts.rates.current()
    assert rates[("bot", None)] < before, "the flood sheds samples"
    assert rates[("quiet", None)] == 1.0
    depths = ahead.depths()
    history.close()
    store.close()
    # round robin: each segment had half of the pass's budget of 64 texts embedded
    assert depths[Segment(service="bot", model=None)] == 300 - 32, "bounded, oldest dropped"
    # a first pass reads the whole horizon: an hour of 2 calls a minute, 2 texts each
    assert depths[Segment(service="quiet", model=None)] == 60 * 2 * 2 - 32


def test_a_remote_embedder_embeds_ahead_and_the_jobs_then_send_it_nothing(
        store: SqliteStore, history: SqliteHistory) -> None:
    server = EmbeddingServer()
    try:
        embedder = CachedEmbedder(RemoteEmbedder(server.url, "bge-small", batch_size=16),
                                  MemoryCache(100_000))
        texts = TextSampler(store, history, embedder, SampleRates(store, 3600))
        assert texts.rates is not None
        now = T0 + 2 * HOUR
        texts.window(BOT, Direction.COMPLETION, last(15, now), CAP)
        ahead = Prefetcher(store, texts, texts.rates, cap=CAP)
        assert ahead.run(now + 5 * MINUTE)["embedded"] > 0
        sent = len(server.requests)
        sample = texts.window(BOT, Direction.COMPLETION, last(15, now + 5 * MINUTE), CAP)
        assert len(sample) > 0 and sample.vectors.shape == (len(sample), DIM)
        assert len(server.requests) == sent, "every text was embedded ahead"
    finally:
        server.close()


def test_a_call_in_both_its_service_and_model_samples_is_queued_once(
        store: SqliteStore, history: SqliteHistory) -> None:
    texts = sampler(store, history, nested=True)
    assert texts.rates is not None
    now = T0 + 2 * HOUR
    for segment in (BOT, Segment(service="bot", model="mini")):
        texts.rates.rate(segment, CAP, now)
    ahead = Prefetcher(store, texts, texts.rates, cap=CAP)
    embedded = ahead.run(now + 30 * MINUTE)["embedded"]
    assert embedded > 0
    assert embedded == texts.embedder.stats.misses  # type: ignore[attr-defined]


class MiniLMNamedHash(Embedder):
    """Words and numbers hashed into 384 dimensions, named like the shipped head's model so
    the toxicity job scores these vectors (meaningless scores; the test reads the rate)."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text):
                digest = hashlib.blake2b(word.encode(), digest_size=2).digest()
                out[i, int.from_bytes(digest) % 384] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_each_text_result_and_its_report_state_the_sampling_rate_of_its_segment(
        store: SqliteStore, history: SqliteHistory) -> None:
    config = load_config(None, environ={"DRIFTWATCH_DRIFT__SAMPLE_CAP": str(CAP),
                                        "DRIFTWATCH_TOXICITY__SAMPLE_CAP": str(CAP)})
    texts = TextSampler(store, history, CachedEmbedder(MiniLMNamedHash(), MemoryCache(10**6)),
                        SampleRates(store, config.drift.window))
    deps = DetectorDeps(store=store, history=history, texts=texts,
                        references=References(store, history, auto_window_s=HOUR / S,
                                              auto_min_calls=10),
                        retention_s=config.store.retention)
    now = T0 + 3 * HOUR
    for name in ("drift", "toxicity"):
        plugin = DETECTORS[name]
        results = plugin.build(plugin.section(config), deps).job.run(now)
        assert texts.rates is not None
        rates = texts.rates.current()
        for result in results:
            rate = rates[result.service, result.model]
            assert plugin.details(result).to_json()["sampling_rate"] == rate
            facts = dict(plugin.report(result, [result]).facts)
            assert facts["Sampled"] == f"{rate:.1%} of the calls (the segment's sample)"
        bot = [r for r in results if r.model is None]
        assert bot and all(r.details.to_json()["sampling_rate"] < 1 for r in bot), \
            "1,500 calls an hour against a cap of 100: a sample"
        stored = history.latest(detector=name)
        assert {r.details.to_json()["sampling_rate"] for r in stored} == set(
            rates.values()), "read back from the history"


class FirstWords(WordHashEmbedder):
    """The word-hash embedder reading only each text's first two words: a truncation."""

    @property
    def cache_id(self) -> str:
        return "word-hash-1024@2"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return super().embed([" ".join(t.split()[:2]) for t in texts])


def test_a_baseline_frozen_at_one_truncation_keeps_its_texts_when_the_setting_changes(
        store: SqliteStore, history: SqliteHistory) -> None:
    history.set_baseline(Baseline(service="bot", model=None, start_ns=T0, end_ns=T0 + HOUR,
                                  source="pinned"))
    config = load_config(None, environ={}).drift
    references = References(store, history, auto_window_s=3600, auto_min_calls=10)
    reference = references.reference(config, BOT, T0 + 3 * HOUR)
    before = TextSampler(store, history, WordHashEmbedder()).reference(
        BOT, Direction.PROMPT, reference, CAP)
    store.delete_before(T0 + 2 * HOUR, batch_size=10_000)  # the baseline's calls expire
    after = TextSampler(store, history, FirstWords()).reference(
        BOT, Direction.PROMPT, reference, CAP)
    assert before is not None and after is not None and len(before) > 0
    assert after.texts == before.texts
    assert np.allclose(after.vectors, FirstWords().embed(after.texts), atol=1e-3)
    frozen = history.sample("bot", None, "prompt")
    assert frozen is not None and frozen.embedding_model == "word-hash-1024@2"
