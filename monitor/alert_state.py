"""`SqliteAlertState`: alert instances and what each notifier was told, in the store's file.

An alert instance is a rule and a label set (its fingerprint). It is stored while it is
pending, firing, or resolved but not yet done being sent; each notifier's last delivery
(the state it was told and when) is stored beside it. Both survive restarts, so a firing
alert keeps its start time and its PagerDuty incident, and a resolve still owed is sent.
The tables are created by `monitor.schema` (the store migrates the file before this opens).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from monitor.errors import StoreError
from monitor.records import rfc3339
from monitor.schema import SCHEMA_VERSION, schema_version

AlertState = Literal["pending", "firing", "resolved"]
Outcome = Literal["sent", "rejected"]  # rejected: a receiver refused it for good (4xx)

_ALERT_COLUMNS = ("fingerprint, rule, labels, annotations, state, active_ns, fired_ns, "
                  "resolved_ns, holds, observed, value, source_interval_s, updated_ns")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    """One alert instance. `fired_ns` is its startsAt; `resolved_ns` its endsAt once
    resolved. `holds` counts the consecutive evaluations (with a new `observed` key) on
    which its condition held while pending."""

    fingerprint: str
    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: AlertState
    active_ns: int
    fired_ns: int | None = None
    resolved_ns: int | None = None
    holds: int = 1
    observed: str = ""
    value: float | None = None
    source_interval_s: float = 60.0
    updated_ns: int = 0

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", self.rule)

    def to_json(self, deliveries: Sequence[Delivery] = ()) -> dict[str, Any]:
        """The `driftwatch alerts --json` object."""
        return {
            "fingerprint": self.fingerprint,
            "alertname": self.alertname,
            "state": self.state,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "active_at": rfc3339(self.active_ns),
            "starts_at": rfc3339(self.fired_ns) if self.fired_ns else None,
            "ends_at": rfc3339(self.resolved_ns) if self.resolved_ns else None,
            "deliveries": {d.notifier: {"state": d.state, "outcome": d.outcome,
                                        "sent_at": rfc3339(d.sent_ns)} for d in deliveries},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """What a notifier was last told about an alert instance."""

    fingerprint: str
    notifier: str
    state: AlertState
    outcome: Outcome
    sent_ns: int


class SqliteAlertState:
    """Alert state in an already-migrated store file. Thread-safe: one connection per
    thread for reads, one lock for writes, like `SqliteHistory`."""

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
            raise StoreError(f"alert state in {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open alert state in {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read alert state in {self.path}: {exc}") from exc

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
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"cannot {what} in {self.path}: {exc}") from exc
                raise

    def close(self) -> None:
        with self._connections_lock:
            if self._closed:
                return
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def alerts(self) -> list[AlertRecord]:
        rows = self._read(f"SELECT {_ALERT_COLUMNS} FROM alert_instances "
                          "ORDER BY rule, labels")
        return [_alert_from_row(row) for row in rows]

    def save(self, alerts: Sequence[AlertRecord], deleted: Sequence[str] = ()) -> None:
        """Upsert `alerts` and forget the `deleted` fingerprints (with their deliveries),
        in one transaction."""
        if not alerts and not deleted:
            return
        with self._transaction("save alert state") as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO alert_instances ({_ALERT_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(a.fingerprint, a.rule, json.dumps(dict(a.labels), sort_keys=True),
                  json.dumps(dict(a.annotations), ensure_ascii=False), a.state, a.active_ns,
                  a.fired_ns, a.resolved_ns, a.holds, a.observed, a.value,
                  a.source_interval_s, a.updated_ns) for a in alerts])
            for table in ("alert_instances", "alert_deliveries"):
                conn.executemany(f"DELETE FROM {table} WHERE fingerprint = ?",
                                 [(fp,) for fp in deleted])

    def deliveries(self) -> dict[tuple[str, str], Delivery]:
        """Every (fingerprint, notifier) -> its last delivery."""
        rows = self._read("SELECT fingerprint, notifier, state, outcome, sent_ns FROM "
                          "alert_deliveries")
        return {(fp, notifier): Delivery(fingerprint=fp, notifier=notifier, state=state,
                                         outcome=outcome, sent_ns=sent)
                for fp, notifier, state, outcome, sent in rows}

    def record(self, deliveries: Sequence[Delivery]) -> None:
        """Remember deliveries of alerts that still exist (one deleted meanwhile is not
        brought back)."""
        if not deliveries:
            return
        with self._transaction("record alert deliveries") as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO alert_deliveries (fingerprint, notifier, state, "
                "outcome, sent_ns) SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM "
                "alert_instances WHERE fingerprint = ?)",
                [(d.fingerprint, d.notifier, d.state, d.outcome, d.sent_ns, d.fingerprint)
                 for d in deliveries])


def _alert_from_row(row: Sequence[Any]) -> AlertRecord:
    (fp, rule, labels, annotations, state, active, fired, resolved, holds, observed, value,
     interval, updated) = row
    return AlertRecord(fingerprint=fp, rule=rule, labels=json.loads(labels),
                       annotations=json.loads(annotations), state=state, active_ns=active,
                       fired_ns=fired, resolved_ns=resolved, holds=holds, observed=observed,
                       value=value, source_interval_s=interval, updated_ns=updated)
