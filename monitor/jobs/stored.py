"""Reading a detector's details back from the JSON the history stored.

Leniently: rows written by an earlier version may lack a field or hold another type, and a
result must still load (and show what it has) rather than fail a scrape or a page. Each
reader gives the field's empty value (None, 0, "", nothing) for what is missing or of the
wrong type. Numbers come back as stored, int or float, so that `to_json` writes them again
exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def number(value: Any) -> float | None:
    """A finite int or float as stored (a bool is not a number here), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def optional_integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def texts(value: Any) -> tuple[str, ...]:
    return tuple(v for v in items(value) if isinstance(v, str))
