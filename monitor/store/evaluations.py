"""How the SQLite store keeps evaluations: joined to their calls, or pending until the call
arrives, and read back by segment, evaluation name and window.

An evaluation names its call by (trace id, span id), by response id, or both; the span wins
when both name a stored call. One that finds no call waits in `pending_evaluations` and is
joined in the write that stores its call, or expired with the content events after
`ingest.join_window`. The pending table holds at most `ingest.max_pending_evaluations`: past
it a new evaluation whose call is not stored is refused, not kept, so a client naming calls
that never come cannot grow it; nothing already pending is dropped for it, and an evaluation
whose call is stored always joins. Joined rows carry their call's service, model and start
time, so a window of evaluations is read by index without the wide call rows. The functions
that write run inside the store's write transaction, on its cursor.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from monitor.core.components import CallQuery
from monitor.core.evaluations import Evaluation, ScoredCall
from monitor.core.records import Segment

_fromhex = bytes.fromhex
_CALL_BY_SPAN = "SELECT trace_id, span_id, service, model, start_ns FROM calls " \
    "WHERE trace_id = ? AND span_id = ?"
# the newest call of that response id: a retried request may have answered twice
_CALL_BY_RESPONSE = "SELECT trace_id, span_id, service, model, start_ns FROM calls " \
    "WHERE response_id = ? ORDER BY start_ns DESC LIMIT 1"
_INSERT = (
    "INSERT OR IGNORE INTO evaluations (trace_id, span_id, service, model, call_start_ns, "
    "name, score, label, explanation, source, time_ns, received_ns) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_PENDING = (
    "INSERT INTO pending_evaluations (trace_id, span_id, response_id, received_ns, "
    "evaluation) VALUES (?, ?, ?, ?, ?)")
# CROSS JOIN pins the loop order: this write's new calls, the pending side by index.
_PENDING_FOR_NEW = (
    "SELECT p.id, p.evaluation FROM calls AS c CROSS JOIN pending_evaluations AS p "
    "ON p.trace_id = c.trace_id AND p.span_id = c.span_id WHERE c.rowid > :lo "
    "UNION "
    "SELECT p.id, p.evaluation FROM calls AS c CROSS JOIN pending_evaluations AS p "
    "ON p.response_id = c.response_id WHERE c.rowid > :lo AND c.response_id IS NOT NULL")
DELETE_OLD = (
    "DELETE FROM evaluations WHERE id IN "
    "(SELECT id FROM evaluations WHERE call_start_ns < ? LIMIT ?)")
DELETE_PENDING = (
    "DELETE FROM pending_evaluations WHERE id IN "
    "(SELECT id FROM pending_evaluations WHERE received_ns < ? LIMIT ?)")


def join_evaluations(cur: sqlite3.Cursor, lo: int, evaluations: Sequence[Evaluation],
                     received_ns: int, *, max_pending: int | None = None,
                     ) -> tuple[int, int, tuple[int, ...]]:
    """Store the batch's evaluations with their calls and join the pending ones whose call
    was inserted in this write (rowid > lo); keep the rest pending, up to `max_pending`
    (None: no bound).

    Returns (evaluations joined, evaluations kept pending, the indexes in `evaluations` of
    those refused because `max_pending` were already waiting).
    """
    waiting: list[Evaluation] = []
    if cur.execute("SELECT EXISTS (SELECT 1 FROM pending_evaluations)").fetchone()[0]:
        found = cur.execute(_PENDING_FOR_NEW, {"lo": lo}).fetchall()
        cur.executemany("DELETE FROM pending_evaluations WHERE id = ?", [(i,) for i, _ in found])
        waiting = [Evaluation.from_json(json.loads(data)) for _, data in found]
    joined = pending = 0
    refused: list[int] = []
    room: int | None = None  # counted when the first new one must wait: rarely
    for i, evaluation in enumerate((*waiting, *evaluations)):
        call = _call_of(cur, evaluation)
        if call is None:
            new = i >= len(waiting)  # a waiting one goes back where it was: no new room
            if new and max_pending is not None:
                if room is None:
                    room = max_pending - cur.execute(
                        "SELECT count(*) FROM pending_evaluations").fetchone()[0]
                if room <= 0:
                    refused.append(i - len(waiting))
                    continue
                room -= 1
            cur.execute(_INSERT_PENDING, (
                evaluation.trace_id and _fromhex(evaluation.trace_id),
                evaluation.span_id and _fromhex(evaluation.span_id), evaluation.response_id,
                received_ns, json.dumps(evaluation.to_json(), ensure_ascii=False)))
            pending += 1
            continue
        e = evaluation
        cur.execute(_INSERT, (*call, e.name, e.score, e.label, e.explanation, e.source,
                              e.time_ns, received_ns))
        joined += 1
    return joined, pending, tuple(refused)


def _call_of(cur: sqlite3.Cursor, evaluation: Evaluation) -> tuple[Any, ...] | None:
    row: tuple[Any, ...] | None = None
    if evaluation.trace_id and evaluation.span_id:
        row = cur.execute(_CALL_BY_SPAN, (_fromhex(evaluation.trace_id),
                                          _fromhex(evaluation.span_id))).fetchone()
    if row is None and evaluation.response_id:
        row = cur.execute(_CALL_BY_RESPONSE, (evaluation.response_id,)).fetchone()
    return row


Read = Callable[[str, Sequence[Any]], list[Any]]


def has_call(read: Read, trace_id: str | None, span_id: str | None,
             response_id: str | None) -> bool:
    """Whether a stored call has these span ids, or else this response id."""
    if trace_id and span_id and read(
            "SELECT 1 FROM calls WHERE trace_id = ? AND span_id = ?",
            (_fromhex(trace_id), _fromhex(span_id))):
        return True
    return bool(response_id) and bool(read(
        "SELECT 1 FROM calls WHERE response_id = ? LIMIT 1", (response_id,)))


def _where(segment: Segment, since_ns: int, until_ns: int) -> tuple[str, list[Any]]:
    clauses = ["service = ?", "call_start_ns >= ?", "call_start_ns < ?"]
    params: list[Any] = [segment.service, since_ns, until_ns]
    if segment.model is not None:
        clauses.append("model = ?")
        params.append(segment.model)
    return " AND ".join(clauses), params


def evaluation_names(read: Read, segment: Segment, since_ns: int,
                     until_ns: int) -> dict[str, int]:
    """Every evaluation name of the segment's calls in [since, until), and how many."""
    where, params = _where(segment, since_ns, until_ns)
    rows = read(f"SELECT name, count(*) FROM evaluations WHERE {where} GROUP BY name", params)
    return {name: n for name, n in rows}


def scored_calls(read: Read, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                 limit: int) -> list[ScoredCall]:
    """The segment's evaluations called `name` in the window: the newest `limit`."""
    where, params = _where(segment, since_ns, until_ns)
    rows = read(f"SELECT call_start_ns, score, label FROM evaluations WHERE {where} "
                "AND name = ? ORDER BY call_start_ns DESC LIMIT ?", [*params, name, limit])
    return [ScoredCall(name=name, call_start_ns=start, score=score, label=label)
            for start, score, label in rows]


def worst_scored(read: Read, segment: Segment, name: str, since_ns: int, until_ns: int, *,
                 pass_labels: Sequence[str], limit: int) -> list[ScoredCall]:
    """The segment's lowest-scored evaluations called `name` in the window (where there is
    no score, those without a passing label first), with their calls' texts."""
    where, params = _where(segment, since_ns, until_ns)
    where = " AND ".join(f"e.{c}" for c in where.split(" AND "))
    marks = ", ".join("?" * len(pass_labels)) or "NULL"
    rows = read(
        "SELECT e.call_start_ns, e.score, e.label, e.explanation, e.trace_id, e.span_id, "
        f"c.prompt, c.completion FROM evaluations AS e LEFT JOIN calls AS c "
        f"ON c.trace_id = e.trace_id AND c.span_id = e.span_id WHERE {where} AND e.name = ? "
        f"ORDER BY e.score IS NULL, e.score ASC, e.label IN ({marks}) ASC, "
        "e.call_start_ns DESC LIMIT ?", [*params, name, *pass_labels, limit])
    return [ScoredCall(name=name, call_start_ns=start, score=score, label=label,
                       explanation=explanation, trace_id=bytes(trace).hex(),
                       span_id=bytes(span).hex(), prompt=prompt, completion=completion)
            for start, score, label, explanation, trace, span, prompt, completion in rows]


def _side(query: CallQuery) -> tuple[str, list[Any]]:
    """`FROM ... WHERE ...` of the evaluations of the calls a compare side selects. A side
    by model reads the evaluations alone (they carry their call's service, model and start);
    a side by version or variant walks that side's calls by their index and finds each
    one's evaluations by span, so it reads the side's calls, not every evaluation of the
    service."""
    version = (("service_version", query.service_version) if query.service_version is not None
               else ("variant", query.variant) if query.variant is not None else None)
    if version is None:
        clauses: list[str] = ["e.service = ?"]
        params: list[Any] = [query.service]
        for clause, value in (("e.model = ?", query.model),
                              ("e.call_start_ns >= ?", query.since_ns),
                              ("e.call_start_ns < ?", query.until_ns)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return "FROM evaluations AS e WHERE " + " AND ".join(clauses), params
    column, value = version  # the column comes from the fixed pair above, never from outside
    clauses = ["c.service = ?", f"c.{column} = ?"]
    params = [query.service, value]
    for clause, bound in (("c.model = ?", query.model), ("c.start_ns >= ?", query.since_ns),
                          ("c.start_ns < ?", query.until_ns)):
        if bound is not None:
            clauses.append(clause)
            params.append(bound)
    # CROSS JOIN pins the loop order: the side's calls outside, their evaluations by index
    return ("FROM calls AS c CROSS JOIN evaluations AS e ON e.trace_id = c.trace_id AND "
            "e.span_id = c.span_id WHERE " + " AND ".join(clauses)), params


def side_evaluation_names(read: Read, query: CallQuery, *, limit: int) -> dict[str, int]:
    """The evaluation names of a compare side's calls and how many each, the `limit` most
    common."""
    source, params = _side(query)
    rows = read(f"SELECT e.name, count(*) {source} GROUP BY e.name ORDER BY 2 DESC, 1 LIMIT ?",
                [*params, limit])
    return {name: n for name, n in rows}


def side_evaluations(read: Read, query: CallQuery, name: str, *,
                     limit: int) -> list[ScoredCall]:
    """A uniform sample of at most `limit` of a compare side's evaluations called `name`
    (ordered by span id, random by the spec, so the same side gives the same sample)."""
    source, params = _side(query)
    rows = read(f"SELECT e.call_start_ns, e.score, e.label {source} AND e.name = ? "
                "ORDER BY e.span_id, e.id LIMIT ?", [*params, name, limit])
    return [ScoredCall(name=name, call_start_ns=start, score=score, label=label)
            for start, score, label in rows]
