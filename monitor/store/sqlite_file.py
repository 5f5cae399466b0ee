"""`SqliteFile`: thread-safe access to the store's SQLite file for the parts that keep
their own tables in it (detector history, alert state). The store migrates the file
first; a `SqliteFile` refuses a file at any other schema version.

Each thread reads through a connection of its own; writes take one lock and a short
BEGIN IMMEDIATE transaction, so they interleave with the ingest writer's commits.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.core.errors import StoreError
from monitor.store.schema import SCHEMA_VERSION, schema_version

# Besides sqlite3.Error, binding raises OverflowError for ints past 64 bits and ValueError
# (UnicodeEncodeError) for lone surrogates; either must fail the transaction cleanly.
_DB_ERRORS = (sqlite3.Error, OverflowError, ValueError)


class SqliteFile:
    #: names the tables in error messages, e.g. "detector history"
    what = "store tables"

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._busy_timeout_s = busy_timeout_s
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        found = schema_version(self._conn())
        if found != SCHEMA_VERSION:
            raise StoreError(f"store {self.path} has schema version {found}, expected "
                             f"{SCHEMA_VERSION}; open it with SqliteStore first to migrate")

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"cannot use {self.what} in the store: closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open {self.what} in the store: {exc}") from exc
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read {self.what} in the store: {exc}") from exc

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.rollback()
                if isinstance(exc, _DB_ERRORS):
                    raise StoreError(f"cannot {what} in the store: {exc}") from exc
                raise

    def close(self) -> None:
        with self._connections_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
