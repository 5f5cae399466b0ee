"""The store's SQLite schema: every table and index, as an ordered list of migrations.

A database's `PRAGMA user_version` is the number of migrations applied to it. To change the
schema, append a migration to `MIGRATIONS`; never edit one that has shipped. `migrate` applies
the missing ones in one transaction and refuses a database newer than this code.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from monitor.core.errors import StoreError

Migration = Sequence[str]  # statements run in order, inside the migration transaction

_V1_CALLS: Migration = (
    # Ids are the raw 16- and 8-byte BLOBs, not hex: the two indexes keyed by trace id take
    # random inserts, and halving their keys halves the pages each group commit rewrites.
    """
    CREATE TABLE calls (
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        parent_span_id BLOB,
        service TEXT NOT NULL,
        provider TEXT,
        request_model TEXT,
        response_model TEXT,
        model TEXT,
        operation TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        duration_s REAL NOT NULL,
        status TEXT NOT NULL,
        error_type TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        total_tokens INTEGER,
        streaming INTEGER,
        ttft_s REAL,
        finish_reasons TEXT NOT NULL,
        system_prompt TEXT,
        prompt TEXT,
        completion TEXT,
        content_source INTEGER NOT NULL,
        convention TEXT NOT NULL,
        received_ns INTEGER NOT NULL,
        wrapped INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (trace_id, span_id)
    )
    """,
    "CREATE INDEX calls_service_start ON calls (service, start_ns)",
    # `wrapped` trails so that segment listing and call counting never read the wide rows.
    "CREATE INDEX calls_service_model_start ON calls (service, model, start_ns, wrapped)",
    "CREATE INDEX calls_start ON calls (start_ns, wrapped)",
    # Only wrapper links look calls up by parent, and a root span is no call's inner call.
    "CREATE INDEX calls_parent ON calls (trace_id, parent_span_id) "
    "WHERE parent_span_id IS NOT NULL",
    """
    CREATE TABLE pending_events (
        id INTEGER PRIMARY KEY,
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        received_ns INTEGER NOT NULL,
        event TEXT NOT NULL
    )
    """,
    "CREATE INDEX pending_events_span ON pending_events (trace_id, span_id)",
    "CREATE INDEX pending_events_received ON pending_events (received_ns)",
    "CREATE TABLE heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), written_ns INTEGER NOT NULL)",
    "INSERT INTO heartbeat (id, written_ns) VALUES (1, 0)",
)

# Detector history: results as a time series, pinned/automatic baselines and the frozen
# samples taken from them, self-check outcomes, and the embedding cache. Segment keys use
# '' (never NULL) for "whole service" and "no direction" so that they can be primary keys.
_V2_DETECTORS: Migration = (
    """
    CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        detector TEXT NOT NULL,
        service TEXT NOT NULL,
        model TEXT NOT NULL,
        direction TEXT NOT NULL,
        window_start_ns INTEGER NOT NULL,
        window_end_ns INTEGER NOT NULL,
        computed_ns INTEGER NOT NULL,
        n_reference INTEGER NOT NULL,
        n_current INTEGER NOT NULL,
        statistic REAL,
        p_value REAL,
        anomalous INTEGER,
        summary TEXT NOT NULL,
        details TEXT NOT NULL
    )
    """,
    "CREATE INDEX results_key ON results (detector, service, model, direction, id)",
    "CREATE INDEX results_computed ON results (computed_ns)",
    """
    CREATE TABLE baselines (
        service TEXT NOT NULL,
        model TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        source TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        PRIMARY KEY (service, model)
    )
    """,
    """
    CREATE TABLE baseline_samples (
        service TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        created_ns INTEGER NOT NULL,
        embedding_model TEXT,
        texts TEXT,
        vectors BLOB,
        scorer TEXT,
        scores BLOB,
        durations BLOB,
        PRIMARY KEY (service, model, kind)
    )
    """,
    """
    CREATE TABLE self_checks (
        service TEXT NOT NULL,
        model TEXT NOT NULL,
        direction TEXT NOT NULL,
        computed_ns INTEGER NOT NULL,
        splits INTEGER NOT NULL,
        false_alarm_rate REAL,
        PRIMARY KEY (service, model, direction)
    )
    """,
    """
    CREATE TABLE embeddings (
        model TEXT NOT NULL,
        key BLOB NOT NULL,
        vector BLOB NOT NULL,
        created_ns INTEGER NOT NULL,
        PRIMARY KEY (model, key)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX embeddings_created ON embeddings (created_ns)",
)

# Alert state (monitor.store.alert_state): one row per alert instance (a rule and a label set)
# while it is pending, firing or resolved-but-still-being-sent, and what each notifier was
# last told about it, so a restart neither pages twice nor forgets a resolve.
_V3_ALERTS: Migration = (
    """
    CREATE TABLE alert_instances (
        fingerprint TEXT PRIMARY KEY,
        rule TEXT NOT NULL,
        labels TEXT NOT NULL,
        annotations TEXT NOT NULL,
        state TEXT NOT NULL,
        active_ns INTEGER NOT NULL,
        fired_ns INTEGER,
        resolved_ns INTEGER,
        holds INTEGER NOT NULL,
        observed TEXT NOT NULL,
        value REAL,
        source_interval_s REAL NOT NULL,
        updated_ns INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE alert_deliveries (
        fingerprint TEXT NOT NULL,
        notifier TEXT NOT NULL,
        state TEXT NOT NULL,
        outcome TEXT NOT NULL,
        sent_ns INTEGER NOT NULL,
        PRIMARY KEY (fingerprint, notifier)
    )
    """,
)

# Prompt-cache reads and each call's price, set once when the call is stored (issue 12, cost);
# older rows read as null: unpriced, as they were when stored.
_V4_CALL_COST: Migration = (
    "ALTER TABLE calls ADD COLUMN cached_input_tokens INTEGER",
    "ALTER TABLE calls ADD COLUMN cost_usd REAL",
)

# Evaluations (monitor.core.evaluations): each joined to its call's segment and start time,
# so the evaluation job reads a window of them without touching the wide call rows; those
# still waiting for their call, by span or by response id; the response id on calls; and
# the evaluation a result is about (results of one segment differ by it, as by direction).
_V5_EVALUATIONS: Migration = (
    "ALTER TABLE calls ADD COLUMN response_id TEXT",
    "CREATE INDEX calls_response ON calls (response_id) WHERE response_id IS NOT NULL",
    """
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        service TEXT NOT NULL,
        model TEXT,
        call_start_ns INTEGER NOT NULL,
        name TEXT NOT NULL,
        score REAL,
        label TEXT,
        explanation TEXT,
        source TEXT NOT NULL,
        time_ns INTEGER NOT NULL,
        received_ns INTEGER NOT NULL
    )
    """,
    # a re-delivered evaluation (an exporter's retry) is stored once
    "CREATE UNIQUE INDEX evaluations_identity ON evaluations "
    "(trace_id, span_id, name, source, time_ns)",
    "CREATE INDEX evaluations_window ON evaluations (service, name, call_start_ns)",
    "CREATE INDEX evaluations_model_window ON evaluations (service, model, name, call_start_ns)",
    "CREATE INDEX evaluations_start ON evaluations (call_start_ns)",
    """
    CREATE TABLE pending_evaluations (
        id INTEGER PRIMARY KEY,
        trace_id BLOB,
        span_id BLOB,
        response_id TEXT,
        received_ns INTEGER NOT NULL,
        evaluation TEXT NOT NULL
    )
    """,
    "CREATE INDEX pending_evaluations_span ON pending_evaluations (trace_id, span_id) "
    "WHERE span_id IS NOT NULL",
    "CREATE INDEX pending_evaluations_response ON pending_evaluations (response_id) "
    "WHERE response_id IS NOT NULL",
    "CREATE INDEX pending_evaluations_received ON pending_evaluations (received_ns)",
    "ALTER TABLE results ADD COLUMN evaluation TEXT NOT NULL DEFAULT ''",
)

# Versions (monitor.jobs.compare, the canary): each call's service.version and configured
# variant attribute, indexed by service for `driftwatch compare` and for finding a new
# release; and every comparison made, so that its report page outlives the request.
_V6_VERSIONS: Migration = (
    "ALTER TABLE calls ADD COLUMN service_version TEXT",
    "ALTER TABLE calls ADD COLUMN variant TEXT",
    "CREATE INDEX calls_service_version_start ON calls (service, service_version, start_ns) "
    "WHERE service_version IS NOT NULL",
    "CREATE INDEX calls_service_variant_start ON calls (service, variant, start_ns) "
    "WHERE variant IS NOT NULL",
    """
    CREATE TABLE comparisons (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        created_ns INTEGER NOT NULL,
        body TEXT NOT NULL
    )
    """,
    "CREATE INDEX comparisons_created ON comparisons (created_ns)",
)

# Segments split by version (`jobs.split_by`): the version a result is about ('' for the
# results of every other segment, as for evaluation). A split segment's reference is its
# service's, so baselines, their samples and self-checks need no key of their own.
_V7_SPLIT_RESULTS: Migration = (
    "ALTER TABLE results ADD COLUMN split TEXT NOT NULL DEFAULT ''",
)

MIGRATIONS: tuple[Migration, ...] = (_V1_CALLS, _V2_DETECTORS, _V3_ALERTS, _V4_CALL_COST,
                                  _V5_EVALUATIONS, _V6_VERSIONS, _V7_SPLIT_RESULTS)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def check_not_newer(found: int, known: int) -> None:
    if found > known:
        raise StoreError(
            f"store schema version {found} is newer than this driftwatch knows ({known}); "
            "upgrade driftwatch or use another store path")


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the database to `len(migrations)` in one transaction; return the version.

    `conn` must be in autocommit mode (isolation_level=None).

    :raises StoreError: the database is newer than `migrations`, or a migration failed
        (the database is left at its old version).
    """
    target = len(migrations)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = schema_version(conn)
            check_not_newer(found, target)
            for statements in migrations[found:]:
                for statement in statements:
                    conn.execute(statement)
            # user_version lives in the header page, so it commits or rolls back with the DDL.
            conn.execute(f"PRAGMA user_version = {target:d}")
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"cannot migrate store schema to version {target}: {exc}") from exc
    return target
