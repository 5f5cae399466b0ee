"""The store's config section."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
)

from monitor.core.config import (
    Duration,
    Section,
    parse_size,
)


class StoreConfig(Section):
    path: Path = Path("./data/driftwatch.db")
    retention: Duration = 7 * 86400.0
    retention_batch: int = Field(default=2_000, ge=1)
    # /readyz fails with less free space than this on the store's filesystem (0: never)
    min_free_bytes: Annotated[int, BeforeValidator(parse_size), Field(ge=0)] = 32 << 20
    # read every page at start (PRAGMA quick_check) and refuse a corrupt file before listening
    check_on_start: bool = True
