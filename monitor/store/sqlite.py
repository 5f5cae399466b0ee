"""`SqliteStore`: the daemon's durable store of LLM calls, one SQLite file in WAL mode.

It owns how calls, content events still waiting for their span, and the wrapper links
between calls are kept on disk (the tables themselves are in `monitor.store.schema`). One thread
writes at a time through one connection; every reading thread gets a connection of its own,
so reads see committed batches whole and never wait for the writer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from itertools import chain, repeat
from pathlib import Path
from typing import Any

from monitor.core.components import (
    CallQuery,
    Store,
    StoreStats,
    Timing,
    ValueSeen,
    VersionKey,
    WindowCount,
    WriteBatch,
    WriteResult,
)
from monitor.core.errors import StoreError
from monitor.core.evaluations import ScoredCall
from monitor.core.records import (
    CallStatus,
    ContentEvent,
    ContentSource,
    Direction,
    LLMCall,
    Segment,
    merge_content,
)
from monitor.store.evaluations import (
    DELETE_OLD,
    DELETE_PENDING,
    evaluation_names,
    has_call,
    join_evaluations,
    scored_calls,
    side_evaluation_names,
    side_evaluations,
    worst_scored,
)
from monitor.store.files import FileIdentity, create_owner_only
from monitor.store.schema import SCHEMA_VERSION, check_not_newer, migrate, schema_version

log = logging.getLogger(__name__)

MINUTE_NS = 60_000_000_000
PAGE_SIZE = 8192  # new files only; see the module notes on write amplification
WAL_SIZE_LIMIT = 64 << 20  # the WAL file is cut back to this when it starts over
WAL_RESTART_BYTES = 64 << 20  # past this, a write waits for the WAL to start over
CHECKPOINT_INTERVAL_S = 1.0  # at most one checkpoint pass per interval while writes go on
EXPIRE_BATCH = 5_000
SYNCHRONOUS_MODES = ("NORMAL", "FULL", "EXTRA")

# Besides sqlite3.Error, binding raises OverflowError for ints past 64 bits and
# UnicodeEncodeError (a ValueError) for lone surrogates; either must fail the batch cleanly.
_DB_ERRORS = (sqlite3.Error, OverflowError, ValueError)

_fromhex = bytes.fromhex  # ids are BLOBs in the store, hex everywhere else
_STATUS_TEXT = {status: status.value for status in CallStatus}  # .value costs a descriptor call
_ERROR = CallStatus.ERROR.value
_TEXT_COLUMN = {Direction.PROMPT: "prompt", Direction.COMPLETION: "completion"}
_VERSION_COLUMNS: dict[VersionKey, str] = {
    "model": "model", "service_version": "service_version", "variant": "variant"}
_TIMING = ("start_ns, duration_s, status, error_type, ttft_s, input_tokens, output_tokens, "
           "cost_usd")
_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "service", "provider", "request_model",
    "response_model", "operation", "start_ns", "duration_s", "status", "error_type",
    "input_tokens", "output_tokens", "total_tokens", "streaming", "ttft_s", "finish_reasons",
    "system_prompt", "prompt", "completion", "content_source", "convention",
    "cached_input_tokens", "cost_usd", "response_id",
    "service_version", "variant",
)
_COLUMNS = ", ".join(_FIELDS)
_ROW = f"rowid, {_COLUMNS}"
_START_AT = 1 + _FIELDS.index("start_ns")  # in a _ROW row

# after count(*): errors, calls slower than a bound, priced calls and their cost
_COUNTS = ("coalesce(sum(status = ?), 0), coalesce(sum(duration_s > ?), 0), "
           "count(cost_usd), coalesce(sum(cost_usd), 0.0)")

_ROW_PARAMS = len(_FIELDS) + 2  # the fields, model and received_ns
# Rows per INSERT statement at most. Binding needs the GIL but sqlite3_step releases it, so
# one statement per row (executemany) hands the GIL back and forth once per row: with the
# extractor threads busy, every hand-back waits out their switch interval, tripling the
# write's time. Hundreds of rows per statement make that a few hand-backs per commit.
MAX_ROWS_PER_INSERT = 512
_SELECT_CALL = f"SELECT {_ROW} FROM calls WHERE trace_id = ? AND span_id = ?"
_UPDATE_CONTENT = (
    "UPDATE calls SET system_prompt = ?, prompt = ?, completion = ?, finish_reasons = ?, "
    "content_source = ? WHERE rowid = ?"
)
# CROSS JOIN pins the loop order: walk this batch's rows, look the other side up by index.
_PENDING_FOR_NEW = (
    "SELECT p.id, p.event FROM calls AS c CROSS JOIN pending_events AS p "
    "ON p.trace_id = c.trace_id AND p.span_id = c.span_id WHERE c.rowid > ?"
)
_INSERT_PENDING = (
    "INSERT INTO pending_events (trace_id, span_id, received_ns, event) VALUES (?, ?, ?, ?)"
)
_NEW_LINKS = (
    "SELECT w.rowid, i.rowid FROM calls AS i CROSS JOIN calls AS w "
    "ON w.trace_id = i.trace_id AND w.span_id = i.parent_span_id "
    "WHERE i.rowid > :lo AND w.rowid != i.rowid "
    "UNION "
    "SELECT w.rowid, i.rowid FROM calls AS w CROSS JOIN calls AS i "
    "ON i.trace_id = w.trace_id AND i.parent_span_id = w.span_id "
    "WHERE w.rowid > :lo AND w.rowid != i.rowid"
)
_CHILDREN = (
    "SELECT c.rowid FROM calls AS p CROSS JOIN calls AS c "
    "ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id "
    "WHERE p.rowid = ? AND c.rowid != p.rowid"
)
# Only fills texts the inner call lacks, and matches only when it fills one, so walking
# down a chain of wrappers stops (SET expressions all see the row as it was).
_COPY_TEXTS = (
    "UPDATE calls AS i SET "
    "system_prompt = coalesce(i.system_prompt, w.system_prompt), "
    "prompt = coalesce(i.prompt, w.prompt), "
    "completion = coalesce(i.completion, w.completion), "
    "content_source = CASE WHEN i.system_prompt IS NULL AND i.prompt IS NULL "
    "AND i.completion IS NULL THEN w.content_source ELSE i.content_source END "
    "FROM calls AS w WHERE w.rowid = ? AND i.rowid = ? AND ("
    "(i.system_prompt IS NULL AND w.system_prompt IS NOT NULL) OR "
    "(i.prompt IS NULL AND w.prompt IS NOT NULL) OR "
    "(i.completion IS NULL AND w.completion IS NOT NULL))"
)
_DELETE_CALLS = (
    "DELETE FROM calls WHERE rowid IN "
    "(SELECT rowid FROM calls WHERE start_ns < ? LIMIT ?) RETURNING wrapped"
)
_DELETE_PENDING = (
    "DELETE FROM pending_events WHERE id IN "
    "(SELECT id FROM pending_events WHERE received_ns < ? LIMIT ?)"
)


class SqliteStore(Store):
    """Calls in one SQLite file; see `Store` for the contract.

    :param path: the database file; it and its directories are created owner-only if missing.
    :param synchronous: "FULL" (default) makes every commit survive power loss, which an
        exporter's OK promises; "NORMAL" survives a crash of the process only.
    :param busy_timeout_s: how long a statement waits for another process's lock.
    :param min_free_bytes: `check_writable` fails below this much free space on the
        store's filesystem (0: only when a write itself fails).
    :param max_pending_evaluations: evaluations kept waiting for their call at most; past
        it a write refuses new ones (`WriteResult.evaluations_refused`); None: no bound.
    :raises StoreError: the file cannot be opened or migrated, or its schema is newer.
    """

    def __init__(
        self, path: Path, *, synchronous: str = "FULL", busy_timeout_s: float = 5.0,
        min_free_bytes: int = 0, max_pending_evaluations: int | None = None,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {SYNCHRONOUS_MODES}, got: {synchronous!r}")
        self.path = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout_s = busy_timeout_s
        self._min_free_bytes = min_free_bytes
        self._max_pending_evaluations = max_pending_evaluations
        self._corrupt: str | None = None  # what SQLite said when it found the file corrupt
        self._write_lock = threading.Lock()
        self._readers_lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []
        self._local = threading.local()
        self._closed = False
        self._rows: int | None = None  # counted on first stats(), then kept by the writer
        self._wrapped = 0
        try:
            create_owner_only(self.path)
            self._writer = self._connect()
            self._identity = FileIdentity(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        try:
            self._prepare(self._writer)
            limit = self._writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // _ROW_PARAMS
            # a power of two, so that the chunks below it are too
            self._rows_per_insert = 1 << (min(limit, MAX_ROWS_PER_INSERT).bit_length() - 1)
            self._checkpointer = _Checkpointer(self._connect(), str(self.path))
        except BaseException as exc:
            self._writer.close()
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {self.path}: {exc}") from exc
            raise

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None,
            check_same_thread=False)
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        try:
            # Checked before anything is written, so a newer file is left exactly as it was.
            check_not_newer(schema_version(conn), SCHEMA_VERSION)
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE:d}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot put store {self.path} in WAL mode (got {mode})")
            conn.execute("PRAGMA cache_size = -65536")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT:d}")
            # The checkpointer thread copies the WAL into the file, so commits never do.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        migrate(conn)

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Cursor]:
        """BEGIN IMMEDIATE ... COMMIT on the write connection, all or nothing.

        The caller holds the write lock. Any database error rolls back and becomes a
        StoreError; anything else rolls back and propagates unchanged.
        """
        if self._closed:
            raise StoreError(f"cannot {what}: the store is closed")
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn.cursor()
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                # The first error is the one to report; a failed rollback adds nothing to it.
                with suppress(sqlite3.Error):
                    conn.rollback()
            if isinstance(exc, _DB_ERRORS):
                self._note_corruption(exc)
                raise StoreError(f"cannot {what} in the store: {exc}") from exc
            raise

    def _note_corruption(self, exc: BaseException) -> None:
        """Remember that SQLite found the file corrupt: it does not heal, so readiness
        fails from then on, whichever page the heartbeat happens to touch."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) and self._corrupt is None:
            self._corrupt = str(exc)
            log.error("store %s is corrupt: %s", self.path, exc)

    def write(self, batch: WriteBatch) -> WriteResult:
        received_ns = time.time_ns()
        with self._write_lock:
            self._identity.check()
            self._checkpointer.settle()
            with self._transaction("write a batch") as cur:
                lo = cur.execute("SELECT coalesce(max(rowid), 0) FROM calls").fetchone()[0]
                inserted = self._insert_calls(cur, batch.calls, received_ns)
                fresh = None if inserted == len(batch.calls) else _fresh(cur, lo, batch.calls)
                joined, pending, changed = _join_events(cur, lo, batch.events, received_ns)
                wrappers = _link_wrappers(cur, lo, changed)
                judged, waiting, refused = join_evaluations(
                    cur, lo, batch.evaluations, received_ns,
                    max_pending=self._max_pending_evaluations)
            self._count(inserted, wrappers)
            self._checkpointer.poke()
        return WriteResult(
            calls_inserted=inserted, duplicates=len(batch.calls) - inserted, wrappers=wrappers,
            events_joined=joined, events_pending=pending, fresh=fresh,
            evaluations_joined=judged, evaluations_pending=waiting,
            evaluations_refused=refused)

    def _insert_calls(
        self, cur: sqlite3.Cursor, calls: Sequence[LLMCall], received_ns: int
    ) -> int:
        """Insert the calls (a re-delivered one is skipped) and return how many were new."""
        inserted = done = 0
        while done < len(calls):
            # Full chunks, then the rest in power-of-two chunks: few distinct statements,
            # each prepared once and kept by sqlite3's statement cache.
            rows = min(self._rows_per_insert, 1 << ((len(calls) - done).bit_length() - 1))
            rows_of = map(_call_row, calls[done:done + rows], repeat(received_ns, rows))
            params = list(chain.from_iterable(rows_of))  # flat, without a Python-level loop
            inserted += cur.execute(_insert_sql(rows), params).rowcount
            done += rows
        return inserted

    def delete_before(self, cutoff_ns: int, batch_size: int) -> int:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got: {batch_size}")
        deleted = 0
        while True:
            with self._write_lock:
                with self._transaction("delete old calls") as cur:
                    gone = cur.execute(_DELETE_CALLS, (cutoff_ns, batch_size)).fetchall()
                    judged = cur.execute(DELETE_OLD, (cutoff_ns, batch_size)).rowcount
                self._count(-len(gone), -sum(wrapped for (wrapped,) in gone))
            deleted += len(gone) + judged
            if len(gone) < batch_size and judged < batch_size:
                break
            _let_the_writer_in()
        return deleted + self._delete_pending(cutoff_ns, batch_size)

    def _count(self, rows: int, wrapped: int) -> None:
        """Keep the running totals; called under the write lock, after the commit."""
        if self._rows is not None:
            self._rows += rows
            self._wrapped += wrapped

    def expire_pending(self, cutoff_ns: int) -> int:
        return self._delete_pending(cutoff_ns, EXPIRE_BATCH)

    def _delete_pending(self, cutoff_ns: int, batch_size: int) -> int:
        deleted = 0
        while True:
            with self._write_lock, self._transaction("expire pending events") as cur:
                gone = cur.execute(_DELETE_PENDING, (cutoff_ns, batch_size)).rowcount
                judged = cur.execute(DELETE_PENDING, (cutoff_ns, batch_size)).rowcount
            deleted += gone + judged
            if gone < batch_size and judged < batch_size:
                return deleted
            _let_the_writer_in()

    def check_writable(self) -> None:
        if not self._write_lock.acquire(timeout=self._busy_timeout_s):
            raise StoreError(f"the store is busy: the writer held it for over "
                             f"{self._busy_timeout_s:g} s")
        try:
            if self._corrupt is not None:
                raise StoreError(f"the store is corrupt ({self._corrupt}); restore it from a "
                                 "backup, or move it aside and restart")
            self._identity.check()
            with self._transaction("write the heartbeat") as cur:
                cur.execute("UPDATE heartbeat SET written_ns = ?", (time.time_ns(),))
        finally:
            self._write_lock.release()
        # A heartbeat fits in pages the WAL already has, so it succeeds on a full disk.
        if not self._min_free_bytes:
            return
        try:
            free = self.free_disk_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read the store's free space: {exc.strerror}") from None
        if free < self._min_free_bytes:
            raise StoreError(f"the store's filesystem has {free} bytes free, under "
                             f"store.min_free_bytes ({self._min_free_bytes})")

    def quick_check(self) -> None:
        """Read every page once (SQLite's `PRAGMA quick_check`), so that a corrupted file is
        refused at start instead of failing every request later.

        :raises StoreError: naming the first problem found.
        """
        with self._write_lock:
            try:
                found = [row[0] for row in self._writer.execute("PRAGMA quick_check(5)")]
            except sqlite3.Error as exc:
                found = [str(exc)]
        if found != ["ok"]:
            raise StoreError(f"store {self.path} is corrupt ({'; '.join(found)}); restore it "
                             "from a backup, or move it aside to start with an empty one")

    # -- reading ---------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._readers_lock:
                if self._closed:
                    raise StoreError("cannot read: the store is closed")
                conn = self._connect()
                conn.execute("PRAGMA query_only = 1")
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._closed:
            raise StoreError("cannot read: the store is closed")
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self._note_corruption(exc)
            raise StoreError(f"cannot read the store: {exc}") from exc

    def calls(self, query: CallQuery) -> list[LLMCall]:
        return [_call_from_row(row) for row in self._read(*_select(_ROW, query))]

    def call_pages(self, query: CallQuery, page_size: int = 500) -> Iterator[list[LLMCall]]:
        # Keyset paging on (start_ns, rowid): each page one short read, however deep.
        order, after = ("DESC", "<") if query.newest_first else ("ASC", ">")
        left = query.limit
        cursor: tuple[int, int] | None = None
        while left is None or left > 0:
            where, params = _call_filter(query)
            if cursor is not None:
                where += (" AND " if where else " WHERE ") + f"(start_ns, rowid) {after} (?, ?)"
                params.extend(cursor)
            size = page_size if left is None else min(page_size, left)
            rows = self._read(f"SELECT {_ROW} FROM calls{where} ORDER BY start_ns {order}, "
                              f"rowid {order} LIMIT ?", [*params, size])
            if not rows:
                return
            yield [_call_from_row(row) for row in rows]
            cursor = (rows[-1][_START_AT], rows[-1][0])
            left = None if left is None else left - len(rows)

    def timings(self, query: CallQuery) -> list[Timing]:
        return [Timing(start_ns=start, duration_s=duration, error=status == _ERROR,
                       error_type=error_type, ttft_s=ttft, input_tokens=tokens_in,
                       output_tokens=tokens_out, cost_usd=cost)
                for start, duration, status, error_type, ttft, tokens_in, tokens_out, cost
                in self._read(*_select(_TIMING, query))]

    def costs(self, query: CallQuery) -> list[float]:
        return [cost for (cost,) in self._read(*_select(
            "cost_usd", dataclasses.replace(query, priced=True)))]

    def count(self, query: CallQuery, *, slow_s: float) -> WindowCount:
        where, params = _call_filter(query)
        [(calls, errors, slow, priced, usd)] = self._read(
            f"SELECT count(*), {_COUNTS} FROM calls{where}", [_ERROR, slow_s, *params])
        return WindowCount(calls=calls, errors=errors, slow=slow, priced=priced, usd=usd)

    def minute_counts(self, segment: Segment, since_ns: int, until_ns: int, *,
                      slow_s: float) -> dict[int, WindowCount]:
        where, params = _call_filter(CallQuery.of(segment, since_ns=since_ns,
                                                  until_ns=until_ns))
        rows = self._read(
            f"SELECT start_ns / {MINUTE_NS}, count(*), {_COUNTS} FROM calls{where} GROUP BY 1",
            [_ERROR, slow_s, *params])
        return {minute: WindowCount(calls=n, errors=failed, slow=slower, priced=priced, usd=usd)
                for minute, n, failed, slower, priced, usd in rows}

    def segments(self, since_ns: int | None = None) -> list[Segment]:
        where, params = _call_filter(CallQuery(since_ns=since_ns))
        rows = self._read(
            f"SELECT DISTINCT service, model FROM calls{where} ORDER BY service, model", params)
        return [Segment(service=service, model=model) for service, model in rows]

    def segment_calls(self, since_ns: int | None = None) -> dict[Segment, int]:
        where, params = _call_filter(CallQuery(since_ns=since_ns))
        rows = self._read(f"SELECT service, model, count(*) FROM calls{where} "
                          "GROUP BY service, model", params)
        return {Segment(service=service, model=model): n for service, model, n in rows}

    def has_call(self, trace_id: str | None, span_id: str | None,
                 response_id: str | None) -> bool:
        return has_call(self._read, trace_id, span_id, response_id)

    def evaluation_names(self, segment: Segment, since_ns: int,
                         until_ns: int) -> dict[str, int]:
        return evaluation_names(self._read, segment, since_ns, until_ns)

    def scored_calls(self, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                     limit: int) -> list[ScoredCall]:
        return scored_calls(self._read, segment, name, since_ns, until_ns, limit=limit)

    def worst_scored(self, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                     pass_labels: Sequence[str], limit: int) -> list[ScoredCall]:
        return worst_scored(self._read, segment, name, since_ns, until_ns,
                            pass_labels=pass_labels, limit=limit)

    def side_evaluation_names(self, query: CallQuery, *, limit: int) -> dict[str, int]:
        return side_evaluation_names(self._read, query, limit=limit)

    def side_evaluations(self, query: CallQuery, name: str, *, limit: int) -> list[ScoredCall]:
        return side_evaluations(self._read, query, name, limit=limit)

    def values_seen(self, service: str, key: VersionKey, since_ns: int | None = None,
                    ) -> dict[str, ValueSeen]:
        column = _VERSION_COLUMNS[key]  # from a fixed table, never from outside input
        where, params = _call_filter(CallQuery(service=service, since_ns=since_ns))
        rows = self._read(f"SELECT {column}, count(*), min(start_ns), max(start_ns) "
                          f"FROM calls{where} AND {column} IS NOT NULL GROUP BY {column}",
                          params)
        return {value: ValueSeen(calls=n, first_ns=first, last_ns=last)
                for value, n, first, last in rows}

    def disk_bytes(self) -> int:
        """Bytes the store's files take on disk: the database and its WAL."""
        total = 0
        for name in (str(self.path), f"{self.path}-wal"):
            with suppress(OSError):  # no WAL between a truncating checkpoint and a write
                total += os.stat(name).st_size
        return total

    def free_disk_bytes(self) -> int:
        """Bytes this process may still write on the store's filesystem."""
        fs = os.statvfs(self.path.parent)
        return fs.f_bavail * fs.f_frsize

    def stats(self) -> StoreStats:
        if self._rows is None:
            self._count_rows()
        [(pending,)] = self._read("SELECT count(*) FROM pending_events")
        [(evaluations,)] = self._read("SELECT count(*) FROM pending_evaluations")
        rows, wrapped = self._rows or 0, self._wrapped
        return StoreStats(
            calls=rows - wrapped, pending_events=pending, schema_version=SCHEMA_VERSION,
            pending_evaluations=evaluations, extra={"rows": rows, "wrapped_calls": wrapped})

    def _count_rows(self) -> None:
        # Counted once, under the write lock so that no commit slips between the count and
        # the writer's running total; every later stats() is free of table scans.
        with self._write_lock:
            if self._rows is not None:
                return
            if self._closed:
                raise StoreError("cannot read: the store is closed")
            try:
                rows, wrapped = self._writer.execute(
                    "SELECT count(*), coalesce(sum(wrapped), 0) FROM calls").fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"cannot count calls in the store: {exc}") from exc
            self._rows, self._wrapped = rows, wrapped

    def close(self) -> None:
        with self._write_lock, self._readers_lock:
            if self._closed:
                return
            self._closed = True
            self._checkpointer.stop()
            for conn in (*self._readers, self._writer):
                conn.close()
            self._readers.clear()


def _let_the_writer_in() -> None:
    # threading.Lock is not fair: without giving up the GIL here, the deleting thread would
    # usually take the lock straight back and a waiting write would wait for every batch.
    time.sleep(0)


class _Checkpointer:
    """Copies committed WAL frames into the database file on a thread of its own.

    A passive checkpoint blocks neither the writer nor readers. It is poked after each
    commit and runs while the writer prepares its next batch, so commits only append.
    SQLite lets the WAL start over only when a write transaction begins after a checkpoint
    has caught up; under sustained writes that never happens by chance, so once the WAL is
    past WAL_RESTART_BYTES the writer waits for the pass in progress (`settle`).
    """

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self._page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        self._changed = threading.Condition()
        self._poked = self._passed = 0  # pokes so far; pokes covered by finished passes
        self._wal_bytes = 0
        self._urgent = False  # the writer waits for a pass
        self._stopping = False
        self._failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"checkpoint {name}", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        with self._changed:
            self._poked += 1
            self._changed.notify_all()

    def settle(self) -> None:
        """Wait for the pass in progress if the WAL is long; call before a write begins."""
        if self._wal_bytes > WAL_RESTART_BYTES:
            with self._changed:
                self._urgent = True
                self._changed.notify_all()
                self._changed.wait_for(lambda: self._passed == self._poked or self._stopping)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._passed != self._poked or self._stopping)
                if self._stopping:
                    return
                poked = self._poked
            self._checkpoint()
            with self._changed:
                self._passed = poked
                self._urgent = False
                self._changed.notify_all()
                # A pass copies each page once however many commits rewrote it (the random
                # trace-id index pages are rewritten by nearly every commit), so fewer passes
                # write less.
                self._changed.wait_for(
                    lambda: self._stopping or self._urgent, timeout=CHECKPOINT_INTERVAL_S)

    def _checkpoint(self) -> None:
        try:
            _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            # Commits stay safe in the WAL; it only grows until a checkpoint succeeds.
            if not self._failing:
                log.warning("store checkpoint failed, retrying after each write: %s", exc)
            self._failing = True
            return
        self._failing = False
        self._wal_bytes = frames * self._page_size

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join()
        self._conn.close()


# -- one write's steps (inside its transaction) -----------------------------------------------


def _join_events(
    cur: sqlite3.Cursor, lo: int, events: Sequence[ContentEvent], received_ns: int,
) -> tuple[int, int, list[int]]:
    """Merge events into their stored calls, keep the rest pending.

    Pending events for calls inserted in this write (rowid > lo) are joined too. Returns
    (events joined, events kept pending, rowids of calls whose content changed).
    """
    by_call: defaultdict[tuple[str, str], list[ContentEvent]] = defaultdict(list)
    if cur.execute("SELECT EXISTS (SELECT 1 FROM pending_events)").fetchone()[0]:
        waiting = cur.execute(_PENDING_FOR_NEW, (lo,)).fetchall()
        cur.executemany("DELETE FROM pending_events WHERE id = ?", [(i,) for i, _ in waiting])
        for _, data in waiting:
            event = ContentEvent.from_json(json.loads(data))
            by_call[event.trace_id, event.span_id].append(event)
    for event in events:
        by_call[event.trace_id, event.span_id].append(event)
    joined, pending, changed = 0, 0, []
    for (trace_id, span_id), group in by_call.items():
        key = (_fromhex(trace_id), _fromhex(span_id))
        row = cur.execute(_SELECT_CALL, key).fetchone()
        if row is None:
            cur.executemany(_INSERT_PENDING, [
                (*key, received_ns, json.dumps(e.to_json(), ensure_ascii=False)) for e in group])
            pending += len(group)
            continue
        joined += len(group)
        call = _call_from_row(row)
        merged = merge_content(call, group)
        if merged != call:
            cur.execute(_UPDATE_CONTENT, (
                merged.system_prompt, merged.prompt, merged.completion,
                _reasons_json(merged.finish_reasons), int(merged.content_source), row[0]))
            changed.append(row[0])
    return joined, pending, changed


def _link_wrappers(cur: sqlite3.Cursor, lo: int, changed: Sequence[int]) -> int:
    """Mark calls that wrap another call, and pass their texts down to the innermost call.

    A link is new when either end was inserted in this write (rowid > lo); calls whose
    content changed otherwise pass it down to the calls they wrap. Returns calls newly marked.
    """
    links: list[tuple[int, int]] = cur.execute(_NEW_LINKS, {"lo": lo}).fetchall()
    wrappers = {w for w, _ in links}
    cur.executemany(
        "UPDATE calls SET wrapped = 1 WHERE rowid = ? AND wrapped = 0", [(w,) for w in wrappers])
    marked = max(cur.rowcount, 0) if wrappers else 0
    work = links + [(c, inner) for c in changed for inner in _children(cur, c)]
    while work:
        wrapper, inner = work.pop()
        if cur.execute(_COPY_TEXTS, (wrapper, inner)).rowcount > 0:
            work.extend((inner, child) for child in _children(cur, inner))
    return marked


def _children(cur: sqlite3.Cursor, rowid: int) -> list[int]:
    return [child for (child,) in cur.execute(_CHILDREN, (rowid,)).fetchall()]


# -- rows <-> calls --------------------------------------------------------------------------


def _select(columns: str, query: CallQuery) -> tuple[str, list[Any]]:
    where, params = _call_filter(query)
    if query.sample and query.limit is not None:
        # Pick the sample by the narrow index-friendly key first, then read the wide rows.
        sql = (f"SELECT {columns} FROM calls WHERE rowid IN (SELECT rowid FROM calls{where} "
               "ORDER BY span_id LIMIT ?) ORDER BY start_ns, rowid")
        return sql, [*params, query.limit]
    order = "DESC" if query.newest_first else "ASC"
    sql = f"SELECT {columns} FROM calls{where} ORDER BY start_ns {order}, rowid {order}"
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(query.limit)
    return sql, params


def _key_blob(below: int | None) -> bytes | None:
    if below is None:
        return None
    if not 0 <= below < 1 << 64:
        raise ValueError(f"sample_below: must be in [0, 2**64), got: {below}")
    return below.to_bytes(8, "big")


def _call_filter(query: CallQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = [] if query.include_wrappers else ["wrapped = 0"]
    if query.priced:
        clauses.append("cost_usd IS NOT NULL")
    if query.with_text is not None:
        # the column name comes from the enum, never from outside input
        clauses.append(f"length({_TEXT_COLUMN[query.with_text]}) > 0")
    params: list[Any] = []
    for clause, value in (
        ("service = ?", query.service), ("model = ?", query.model),
        ("service_version = ?", query.service_version), ("variant = ?", query.variant),
        ("start_ns >= ?", query.since_ns), ("start_ns < ?", query.until_ns),
        # span ids are stored as 8-byte BLOBs, which SQLite compares as big-endian numbers
        ("span_id < ?", _key_blob(query.sample_below)),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _call_row(call: LLMCall, received_ns: int) -> tuple[Any, ...]:
    parent = call.parent_span_id
    return (
        _fromhex(call.trace_id), _fromhex(call.span_id), parent and _fromhex(parent),
        call.service, call.provider,
        call.request_model, call.response_model, call.operation, call.start_ns,
        call.duration_s, _STATUS_TEXT[call.status], call.error_type, call.input_tokens,
        call.output_tokens, call.total_tokens, call.streaming, call.ttft_s,
        _reasons_json(call.finish_reasons), call.system_prompt, call.prompt, call.completion,
        int(call.content_source), call.convention, call.cached_input_tokens, call.cost_usd,
        call.response_id, call.service_version, call.variant, call.model, received_ns,
    )


def _call_from_row(row: Sequence[Any]) -> LLMCall:
    """An LLMCall from a `SELECT rowid, <_FIELDS>` row."""
    values = dict(zip(_FIELDS, row[1:], strict=True))
    streaming, parent = values["streaming"], values["parent_span_id"]
    values.update(
        trace_id=values["trace_id"].hex(), span_id=values["span_id"].hex(),
        parent_span_id=parent and parent.hex(),
        status=CallStatus(values["status"]),
        streaming=None if streaming is None else bool(streaming),
        finish_reasons=_reasons_tuple(values["finish_reasons"]),
        content_source=ContentSource(values["content_source"]),
    )
    return LLMCall(**values)


def _fresh(cur: sqlite3.Cursor, lo: int, calls: Sequence[LLMCall]) -> tuple[bool, ...]:
    """Which calls are new rows: those inserted in this write (rowid > lo), each span's
    first copy only (the insert keeps the first of a batch's copies)."""
    new = {(bytes(row[0]).hex(), bytes(row[1]).hex()) for row in cur.execute(
        "SELECT trace_id, span_id FROM calls WHERE rowid > ?", (lo,))}
    marks = []
    for call in calls:
        key = (call.trace_id, call.span_id)
        marks.append(key in new)
        new.discard(key)
    return tuple(marks)


@lru_cache(maxsize=16)
def _insert_sql(rows: int) -> str:
    values = ", ".join([f"({', '.join('?' * _ROW_PARAMS)})"] * rows)
    return (f"INSERT INTO calls ({_COLUMNS}, model, received_ns) VALUES {values} "
            "ON CONFLICT (trace_id, span_id) DO NOTHING")


@lru_cache(maxsize=1024)
def _reasons_json(reasons: tuple[str, ...]) -> str:
    return json.dumps(list(reasons), ensure_ascii=False)


@lru_cache(maxsize=1024)
def _reasons_tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))
