"""The store's config section."""

from __future__ import annotations

from pathlib import Path

from pydantic import (
    Field,
)

from monitor.core.config import (
    Duration,
    Section,
)


class StoreConfig(Section):
    path: Path = Path("./data/driftwatch.db")
    retention: Duration = 7 * 86400.0
    retention_batch: int = Field(default=2_000, ge=1)
