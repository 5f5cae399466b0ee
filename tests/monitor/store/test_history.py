"""SqliteHistory against a real store file: results as a time series (their details read
back as their detector's type, rows of earlier versions included), baselines and their
frozen samples, the embedding cache and retention."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from monitor.core.records import DetectorResult, Direction, RawDetails
from monitor.daemon import DETECTORS
from monitor.jobs.drift.details import DriftDetails
from monitor.jobs.latency.details import LatencyDetails
from monitor.jobs.plugin import details_readers
from monitor.jobs.toxicity.details import ToxicityDetails
from monitor.store.history import Baseline, BaselineSample, SqliteHistory
from monitor.store.sqlite import SqliteStore
from tests.monitor.results import FULL_DETAILS

T0 = 1_700_000_000_000_000_000


@pytest.fixture
def history(tmp_path: Path) -> Iterator[SqliteHistory]:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()  # creates and migrates the file
    history = SqliteHistory(path, details=details_readers(DETECTORS))
    yield history
    history.close()


def result(computed_ns: int, *, model: str | None = None, anomalous: bool | None = False,
           direction: Direction | None = Direction.PROMPT, **details: object) -> DetectorResult:
    return DetectorResult(
        detector="drift", service="support-bot", model=model, direction=direction,
        window_start_ns=computed_ns - 10**9, window_end_ns=computed_ns, n_reference=100,
        n_current=90, statistic=0.01, p_value=0.2, anomalous=anomalous,
        summary="no drift", details=DriftDetails.from_json(details), computed_ns=computed_ns)


def test_results_come_back_with_ids_and_the_latest_per_series(history: SqliteHistory) -> None:
    first = history.record([result(T0), result(T0, model="gpt-4o")])
    second = history.record([result(T0 + 1, anomalous=True, clusters=[{"share_current": 0.2}])])
    assert [r.id for r in first] == [1, 2] and second[0].id == 3
    latest = history.latest()
    assert [(r.model, r.computed_ns, r.anomalous) for r in latest] == [
        (None, T0 + 1, True), ("gpt-4o", T0, False)]
    assert isinstance(latest[0].details, DriftDetails)
    assert latest[0].details.clusters[0].share_current == 0.2
    assert history.result(3) == second[0]


def test_recent_reads_one_series_newest_first(history: SqliteHistory) -> None:
    history.record([result(T0 + i, decision=i % 2 == 0) for i in range(5)])
    history.record([result(T0 + 9, direction=Direction.COMPLETION)])
    recent = history.recent(detector="drift", service="support-bot", model=None,
                            direction=Direction.PROMPT, limit=3)
    assert [r.computed_ns for r in recent] == [T0 + 4, T0 + 3, T0 + 2]


def test_insufficient_data_and_non_finite_values_are_stored_as_null(
        history: SqliteHistory) -> None:
    [stored] = history.record([DetectorResult(
        detector="latency", service="s", model=None, direction=None, window_start_ns=T0,
        window_end_ns=T0 + 1, n_reference=0, n_current=3, statistic=float("nan"),
        p_value=None, anomalous=None, summary="insufficient data", computed_ns=T0)])
    again = history.result(stored.id or 0)
    assert again is not None
    assert (again.statistic, again.anomalous, again.direction) == (None, None, None)


def test_a_pinned_service_baseline_replaces_its_models_automatic_ones(
        history: SqliteHistory) -> None:
    auto = Baseline(service="s", model="m", start_ns=T0, end_ns=T0 + 10, source="auto")
    history.set_baseline(auto)
    history.save_sample("s", "m", BaselineSample(kind="timings", start_ns=T0, end_ns=T0 + 10,
                                                 durations=np.array([1.0, 2.0])))
    pinned = history.set_baseline(Baseline(service="s", model=None, start_ns=T0 + 20,
                                           end_ns=T0 + 30, source="pinned"))
    assert history.baseline("s", "m") is None
    assert history.sample("s", "m", "timings") is None
    assert history.baseline("s", None) == pinned
    assert pinned.created_ns > 0


def test_a_baseline_must_end_after_it_starts(history: SqliteHistory) -> None:
    with pytest.raises(ValueError, match="must end after it starts"):
        history.set_baseline(Baseline(service="s", model=None, start_ns=T0, end_ns=T0,
                                      source="pinned"))


def test_frozen_samples_round_trip_texts_vectors_and_scores(history: SqliteHistory) -> None:
    vectors = np.eye(3, 4, dtype=np.float32)
    history.save_sample("s", None, BaselineSample(
        kind="prompt", start_ns=T0, end_ns=T0 + 1, texts=("a", "b", "c"),
        embedding_model="all-MiniLM-L6-v2", vectors=vectors, scorer="head",
        scores=np.array([0.1, 0.5, 0.9])))
    sample = history.sample("s", None, "prompt")
    assert sample is not None and sample.vectors is not None and sample.scores is not None
    assert sample.texts == ("a", "b", "c")
    np.testing.assert_array_equal(sample.vectors, vectors)
    np.testing.assert_allclose(sample.scores, [0.1, 0.5, 0.9], rtol=1e-6)
    assert history.sample("s", None, "completion") is None


def test_the_embedding_cache_is_per_model_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()
    history = SqliteHistory(path)
    row = np.array([0.5, -0.25, 1.0], dtype=np.float16)
    history.put("minilm", {b"k" * 16: row})
    history.close()
    again = SqliteHistory(path)
    found = again.get("minilm", [b"k" * 16, b"x" * 16])
    assert list(found) == [b"k" * 16]
    np.testing.assert_array_equal(found[b"k" * 16], row)
    assert again.get("other-model", [b"k" * 16]) == {}
    again.close()


def test_retention_drops_old_results_and_embeddings_but_keeps_baselines(
        history: SqliteHistory) -> None:
    history.record([result(T0 + i) for i in range(5)])
    history.put("minilm", {b"k" * 16: np.zeros(3, dtype=np.float16)})
    history.set_baseline(Baseline(service="s", model=None, start_ns=1, end_ns=2,
                                  source="pinned"))
    deleted = history.delete_before(T0 + 3, batch_size=2)
    assert deleted >= 3
    assert [r.computed_ns for r in history.recent(
        detector="drift", service="support-bot", model=None, direction=Direction.PROMPT,
        limit=10)] == [T0 + 4, T0 + 3]
    assert history.baseline("s", None) is not None


# -- rows written by the previous version -------------------------------------------------------

def insert_row(path: Path, detector: str, details: str, *, direction: str = "") -> None:
    """A result row as the previous version's SqliteHistory.record wrote it."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO results (detector, service, model, direction, window_start_ns, "
            "window_end_ns, computed_ns, n_reference, n_current, statistic, p_value, "
            "anomalous, summary, details) VALUES (?, 'bot', '', ?, ?, ?, ?, 10, 10, 0.5, "
            "0.01, 1, 'stored before', ?)", (detector, direction, T0, T0 + 1, T0 + 1, details))
    conn.close()


def test_results_stored_by_the_previous_version_load_and_print_as_they_were(
        tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()
    for detector, details in FULL_DETAILS.items():
        insert_row(path, detector, json.dumps(details),
                   direction="" if detector == "latency" else "prompt")
    history = SqliteHistory(path, details=details_readers(DETECTORS))
    try:
        loaded = {r.detector: r for r in history.latest()}
    finally:
        history.close()
    assert isinstance(loaded["drift"].details, DriftDetails)
    assert isinstance(loaded["toxicity"].details, ToxicityDetails)
    assert isinstance(loaded["latency"].details, LatencyDetails)
    for detector, details in FULL_DETAILS.items():
        assert loaded[detector].to_json()["details"] == details, detector
        assert json.dumps(loaded[detector].to_json()["details"]) == json.dumps(details)
    assert loaded["drift"].details.clusters[0].keywords == ("atm", "cash")
    assert loaded["latency"].details.burn_rates["availability"]["1h"] == 0.5


def test_older_shapes_other_detectors_and_odd_values_still_load(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()
    insert_row(path, "drift", json.dumps({"decision": None, "tests": {}, "clusters": []}),
               direction="prompt")  # before reference_mode, projection and self-checks
    insert_row(path, "latency", json.dumps({"count": "many", "p95_s": "slow",
                                            "burn_rates": [1, 2], "errors_by_type": None}))
    insert_row(path, "sentiment", json.dumps({"evaluation": "relevance", "mean": 0.8}))
    insert_row(path, "toxicity", "[1, 2, 3]", direction="completion")
    history = SqliteHistory(path, details=details_readers(DETECTORS))
    try:
        loaded = {r.detector: r for r in history.latest()}
    finally:
        history.close()
    drift = loaded["drift"].details
    assert isinstance(drift, DriftDetails)
    assert (drift.decision, drift.projection, drift.self_check) == (None, None, None)
    latency = loaded["latency"].details
    assert isinstance(latency, LatencyDetails)
    assert (latency.count, latency.p95_s, dict(latency.burn_rates)) == (None, None, {})
    assert loaded["sentiment"].details == RawDetails({"evaluation": "relevance", "mean": 0.8})
    assert loaded["sentiment"].to_json()["details"] == {"evaluation": "relevance",
                                                        "mean": 0.8}
    assert loaded["toxicity"].to_json()["details"] == {}
    for result in loaded.values():  # what /metrics and the alert rules read of them
        plugin = DETECTORS.get(result.detector)
        if plugin is not None:
            plugin.metrics(result)
            plugin.rule_fields(result)


def test_without_the_table_of_detectors_details_come_back_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "driftwatch.db"
    SqliteStore(path).close()
    insert_row(path, "toxicity", json.dumps(FULL_DETAILS["toxicity"]), direction="prompt")
    history = SqliteHistory(path)
    try:
        [result] = history.latest()
    finally:
        history.close()
    assert result.details == RawDetails(FULL_DETAILS["toxicity"])
    assert DETECTORS["toxicity"].details(result).toxic_count == 13
