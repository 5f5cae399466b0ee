"""`SqliteHistory`: what the detectors remember between runs, in the store's SQLite file.

- results: every DetectorResult, a time series that survives restarts;
- baselines: the reference window of each segment, pinned by a user or chosen
  automatically, and the samples frozen from it (texts with their embeddings, call
  durations), so a baseline outlives the retention of its calls and is never re-embedded;
- self-checks: the latest reference-vs-reference false-alarm rate per segment;
- embeddings: float16 vectors keyed by (model, text digest), the persisted cache behind
  `detectors.embedder.CachedEmbedder`.

The tables are created by `monitor.store.schema` (the store migrates the file before this opens).
Segment keys are stored with '' for "whole service" and "no direction". A result's details are
stored as their JSON and read back as their detector's type by the readers the daemon hands
in (one per detector of its table); details of a detector without one, or that no longer
read as its type, come back as stored (`RawDetails`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from monitor.core.records import (
    Details,
    DetectorResult,
    Direction,
    RawDetails,
    SelfCheckRecord,
    rfc3339,
)
from monitor.store.sqlite_file import SqliteFile

log = logging.getLogger(__name__)

#: reads one detector's stored details JSON back as its type
DetailsReader = Callable[[Mapping[str, Any]], Details]
BaselineSource = Literal["pinned", "auto"]
SampleKind = Literal["prompt", "completion", "timings"]

_DELETE_OLD = (
    "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE computed_ns < ? LIMIT ?)",
    "DELETE FROM embeddings WHERE (model, key) IN "
    "(SELECT model, key FROM embeddings WHERE created_ns < ? LIMIT ?)",
)
_RESULT_COLUMNS = (
    "id, detector, service, model, direction, window_start_ns, window_end_ns, computed_ns, "
    "n_reference, n_current, statistic, p_value, anomalous, summary, details, evaluation, split"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Baseline:
    """The reference window of a segment (model None = the whole service)."""

    service: str
    model: str | None
    start_ns: int
    end_ns: int
    source: BaselineSource
    created_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "model": self.model, "from": rfc3339(self.start_ns),
                "to": rfc3339(self.end_ns), "source": self.source,
                "created_at": rfc3339(self.created_ns) if self.created_ns else None}


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class BaselineSample:
    """What was frozen from a baseline window for one direction (or its timings)."""

    kind: SampleKind
    start_ns: int
    end_ns: int
    texts: tuple[str, ...] = ()
    embedding_model: str | None = None
    vectors: np.ndarray | None = None  # float32 rows, one per text
    scorer: str | None = None
    scores: np.ndarray | None = None  # toxicity per text, by `scorer`
    durations: np.ndarray | None = None  # seconds, for kind "timings"


class SqliteHistory(SqliteFile):
    """Detector history in an already-migrated store file. Thread-safe: one connection
    per thread for reads, one lock for writes (which take SQLite's write lock briefly)."""

    what = "detector history"

    def __init__(self, path: Path, *, details: Mapping[str, DetailsReader] | None = None,
                 busy_timeout_s: float = 10.0) -> None:
        """:param details: detector name -> the reader of its details (the daemon's table
            of detectors gives them); results of other detectors keep theirs as stored."""
        super().__init__(path, busy_timeout_s=busy_timeout_s)
        self._readers = dict(details or {})

    # -- results -----------------------------------------------------------------------------

    def record(self, results: Sequence[DetectorResult]) -> list[DetectorResult]:
        """Store one run's results; return them with their ids."""
        stored = []
        with self._transaction("record detector results") as conn:
            for r in results:
                cursor = conn.execute(
                    f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES "
                    "(NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.detector, r.service, r.model or "",
                     r.direction.value if r.direction else "", r.window_start_ns,
                     r.window_end_ns, r.computed_ns, r.n_reference, r.n_current,
                     _finite(r.statistic), _finite(r.p_value),
                     None if r.anomalous is None else int(r.anomalous), r.summary,
                     json.dumps(r.details.to_json(), ensure_ascii=False, allow_nan=False,
                                default=_json_default), r.evaluation or "", r.split or ""))
                stored.append(_with_id(r, cursor.lastrowid))
        return stored

    def latest(self, *, detector: str | None = None,
               service: str | None = None) -> list[DetectorResult]:
        """The newest result of every (detector, segment, direction or evaluation)."""
        where, params = _where({"detector": detector, "service": service})
        rows = self._read(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE id IN (SELECT max(id) FROM results"
            f"{where} GROUP BY detector, service, model, split, direction, evaluation) "
            "ORDER BY detector, service, model, split, direction, evaluation", params)
        return [self._result_from_row(row) for row in rows]

    def recent(self, *, detector: str, service: str, model: str | None,
               direction: Direction | None, limit: int,
               evaluation: str | None = None, split: str | None = None,
               ) -> list[DetectorResult]:
        """The newest `limit` results of one series, newest first."""
        rows = self._read(
            f"SELECT {_RESULT_COLUMNS} FROM results WHERE detector = ? AND service = ? AND "
            "model = ? AND direction = ? AND evaluation = ? AND split = ? "
            "ORDER BY id DESC LIMIT ?",
            (detector, service, model or "", direction.value if direction else "",
             evaluation or "", split or "", limit))
        return [self._result_from_row(row) for row in rows]

    def result(self, result_id: int) -> DetectorResult | None:
        rows = self._read(f"SELECT {_RESULT_COLUMNS} FROM results WHERE id = ?", (result_id,))
        return self._result_from_row(rows[0]) if rows else None

    def _result_from_row(self, row: Sequence[Any]) -> DetectorResult:
        (rid, detector, service, model, direction, start, end, computed, n_ref, n_cur,
         statistic, p_value, anomalous, summary, details, evaluation, split) = row
        return DetectorResult(
            id=rid, detector=detector, service=service, model=model or None,
            direction=Direction(direction) if direction else None, window_start_ns=start,
            window_end_ns=end, computed_ns=computed, n_reference=n_ref, n_current=n_cur,
            statistic=statistic, p_value=p_value,
            anomalous=None if anomalous is None else bool(anomalous), summary=summary,
            details=self._details(rid, detector, details), evaluation=evaluation or None,
            split=split or None)

    def _details(self, result_id: int, detector: str, stored: str) -> Details:
        try:
            data = json.loads(stored)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("result %d: its stored details are not a JSON object", result_id)
            return RawDetails({})
        read = self._readers.get(detector)
        if read is None:
            return RawDetails(data)
        try:
            return read(data)
        except (TypeError, ValueError, AttributeError, KeyError):
            log.warning("result %d: its %s details do not read as such; kept as stored",
                        result_id, detector, exc_info=True)
            return RawDetails(data)

    # -- baselines ---------------------------------------------------------------------------

    def baseline(self, service: str, model: str | None) -> Baseline | None:
        rows = self._read("SELECT service, model, start_ns, end_ns, source, created_ns FROM "
                          "baselines WHERE service = ? AND model = ?", (service, model or ""))
        return _baseline_from_row(rows[0]) if rows else None

    def baselines(self) -> list[Baseline]:
        rows = self._read("SELECT service, model, start_ns, end_ns, source, created_ns FROM "
                          "baselines ORDER BY service, model")
        return [_baseline_from_row(row) for row in rows]

    def set_baseline(self, baseline: Baseline) -> Baseline:
        """Pin (or auto-choose) a segment's reference; its old frozen samples are dropped.

        A pinned baseline also replaces the automatic baselines of the service's models,
        which then follow the service's pin until pinned themselves.
        """
        if baseline.end_ns <= baseline.start_ns:
            raise ValueError(f"a baseline must end after it starts, got: {baseline.start_ns} "
                             f"to {baseline.end_ns}")
        created = baseline.created_ns or time.time_ns()
        model = baseline.model or ""
        with self._transaction("set a baseline") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO baselines (service, model, start_ns, end_ns, source, "
                "created_ns) VALUES (?, ?, ?, ?, ?, ?)",
                (baseline.service, model, baseline.start_ns, baseline.end_ns, baseline.source,
                 created))
            conn.execute("DELETE FROM baseline_samples WHERE service = ? AND model = ?",
                         (baseline.service, model))
            if baseline.source == "pinned" and not model:
                conn.execute(
                    "DELETE FROM baseline_samples WHERE service = ? AND model IN (SELECT model "
                    "FROM baselines WHERE service = ? AND model != '' AND source = 'auto')",
                    (baseline.service, baseline.service))
                conn.execute("DELETE FROM baselines WHERE service = ? AND model != '' AND "
                             "source = 'auto'", (baseline.service,))
        return Baseline(service=baseline.service, model=baseline.model,
                        start_ns=baseline.start_ns, end_ns=baseline.end_ns,
                        source=baseline.source, created_ns=created)

    def sample(self, service: str, model: str | None, kind: SampleKind) -> BaselineSample | None:
        rows = self._read(
            "SELECT kind, start_ns, end_ns, texts, embedding_model, vectors, scorer, scores, "
            "durations FROM baseline_samples WHERE service = ? AND model = ? AND kind = ?",
            (service, model or "", kind))
        if not rows:
            return None
        kind_, start, end, texts, embedding_model, vectors, scorer, scores, durations = rows[0]
        texts_t = tuple(json.loads(texts)) if texts else ()
        return BaselineSample(
            kind=kind_, start_ns=start, end_ns=end, texts=texts_t,
            embedding_model=embedding_model,
            vectors=_array(vectors, np.float16, len(texts_t)),
            scorer=scorer, scores=_array(scores, np.float32), durations=_array(
                durations, np.float32))

    def save_sample(self, service: str, model: str | None, sample: BaselineSample) -> None:
        with self._transaction("save a baseline sample") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO baseline_samples (service, model, kind, start_ns, "
                "end_ns, created_ns, embedding_model, texts, vectors, scorer, scores, "
                "durations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (service, model or "", sample.kind, sample.start_ns, sample.end_ns,
                 time.time_ns(), sample.embedding_model,
                 json.dumps(sample.texts, ensure_ascii=False) if sample.texts else None,
                 _blob(sample.vectors, np.float16), sample.scorer,
                 _blob(sample.scores, np.float32), _blob(sample.durations, np.float32)))

    # -- self-checks ---------------------------------------------------------------------------

    def save_self_check(self, record: SelfCheckRecord) -> None:
        with self._transaction("save a self-check") as conn:
            conn.execute(
                "INSERT OR REPLACE INTO self_checks (service, model, direction, computed_ns, "
                "splits, false_alarm_rate) VALUES (?, ?, ?, ?, ?, ?)",
                (record.service, record.model or "", record.direction.value,
                 record.computed_ns, record.splits, record.false_alarm_rate))

    def self_checks(self) -> list[SelfCheckRecord]:
        rows = self._read("SELECT service, model, direction, computed_ns, splits, "
                          "false_alarm_rate FROM self_checks ORDER BY service, model, direction")
        return [SelfCheckRecord(service=s, model=m or None, direction=Direction(d),
                                computed_ns=c, splits=n, false_alarm_rate=r)
                for s, m, d, c, n, r in rows]

    # -- embedding cache (detectors.embedder.EmbeddingCache) ---------------------------------

    def get(self, model_id: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 500):  # SQLite's bound-parameter limit
            chunk = unique[i:i + 500]
            marks = ", ".join("?" * len(chunk))
            for key, vector in self._read(
                    f"SELECT key, vector FROM embeddings WHERE model = ? AND key IN ({marks})",
                    [model_id, *chunk]):
                found[bytes(key)] = np.frombuffer(vector, dtype=np.float16)
        return found

    def put(self, model_id: str, items: Mapping[bytes, np.ndarray]) -> None:
        if not items:
            return
        now = time.time_ns()
        with self._transaction("cache embeddings") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model, key, vector, created_ns) "
                "VALUES (?, ?, ?, ?)",
                [(model_id, key, np.asarray(v, dtype=np.float16).tobytes(), now)
                 for key, v in items.items()])

    # -- retention -----------------------------------------------------------------------------

    def delete_before(self, cutoff_ns: int, batch_size: int = 2_000) -> int:
        """Drop results and cached embeddings older than the cutoff, in small transactions.
        Baselines and their frozen samples are kept: they are the references."""
        deleted = 0
        for sql in _DELETE_OLD:
            while True:
                with self._transaction("delete old detector history") as conn:
                    n = conn.execute(sql, (cutoff_ns, batch_size)).rowcount
                deleted += n
                if n < batch_size:
                    break
        return deleted


def _where(filters: Mapping[str, str | None]) -> tuple[str, list[Any]]:
    clauses = [f"{name} = ?" for name, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in result details")


def _with_id(result: DetectorResult, result_id: int | None) -> DetectorResult:
    return dataclasses.replace(result, id=result_id)


def _baseline_from_row(row: Sequence[Any]) -> Baseline:
    service, model, start, end, source, created = row
    return Baseline(service=service, model=model or None, start_ns=start, end_ns=end,
                    source=source, created_ns=created)


def _blob(values: np.ndarray | None, dtype: type[np.generic]) -> bytes | None:
    return None if values is None else np.ascontiguousarray(values, dtype=dtype).tobytes()


def _array(blob: bytes | None, dtype: type[np.generic], rows: int = 0) -> np.ndarray | None:
    if blob is None:
        return None
    flat = np.frombuffer(blob, dtype=dtype).astype(np.float32)
    return flat.reshape(rows, -1) if rows else flat
