"""`SqliteComparisons`: every comparison made (`driftwatch compare`, the canary), kept in
the store's file so that its report page (`/reports/compare/{id}`) and the link an alert
carries outlive the request. A comparison is kept as the JSON the API answered with;
retention deletes it with the calls it was made of. The table is created by
`monitor.store.schema`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from monitor.store.sqlite_file import SqliteFile


class SqliteComparisons(SqliteFile):
    what = "comparisons"

    def save(self, service: str, created_ns: int, body: Mapping[str, Any]) -> int:
        """Store one comparison; return its id."""
        with self._transaction("save a comparison") as conn:
            cursor = conn.execute(
                "INSERT INTO comparisons (service, created_ns, body) VALUES (?, ?, ?)",
                (service, created_ns, json.dumps(dict(body), ensure_ascii=False)))
            found = cursor.lastrowid
        assert found is not None
        return found

    def get(self, comparison_id: int) -> dict[str, Any] | None:
        rows = self._read("SELECT body FROM comparisons WHERE id = ?", (comparison_id,))
        if not rows:
            return None
        body: dict[str, Any] = json.loads(rows[0][0])
        return body

    def delete_before(self, cutoff_ns: int) -> int:
        with self._transaction("delete old comparisons") as conn:
            return conn.execute("DELETE FROM comparisons WHERE created_ns < ?",
                                (cutoff_ns,)).rowcount
