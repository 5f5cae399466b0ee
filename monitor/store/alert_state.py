"""`SqliteAlertState`: alert instances and what each notifier was told, in the store's file.

An alert instance is a rule and a label set (its fingerprint). It is stored while it is
pending, firing, or resolved but not yet done being sent; each notifier's last delivery
(the state it was told and when) is stored beside it. Both survive restarts, so a firing
alert keeps its start time and its PagerDuty incident, and a resolve still owed is sent.
The tables are created by `monitor.store.schema` (the store migrates the file before this opens).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from monitor.core.records import rfc3339
from monitor.store.sqlite_file import SqliteFile

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


class SqliteAlertState(SqliteFile):
    """Alert state in an already-migrated store file (thread-safe, like `SqliteHistory`)."""

    what = "alert state"

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
