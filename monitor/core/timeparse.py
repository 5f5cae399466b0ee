"""Times as people type them: RFC 3339 ("2026-11-22T07:00:00Z"), relative ("-2h", "1h" = an
hour ago, "now"), or unix seconds. All results are unix nanoseconds within int64 (years 1677 to
2262), what the store and OTLP hold; anything else is a TimeParseError, never an
OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from monitor.core.config import parse_duration

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1


class TimeParseError(ValueError):
    pass


def parse_time(text: str, *, now_ns: int) -> int:
    """Unix nanoseconds from `text`; TimeParseError says what was expected."""
    try:
        ns = _parse(text, now_ns=now_ns)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, TimeParseError):
            raise
        ns = None
    if ns is None or not INT64_MIN <= ns <= INT64_MAX:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise TimeParseError(f"outside the times driftwatch can hold (years 1677 to 2262), "
                             f"got: {shown!r}")
    return ns


def _parse(text: str, *, now_ns: int) -> int:
    value = text.strip()
    if value == "now":
        return now_ns
    relative = value.removeprefix("-")
    if relative and relative[-1] in "smhdw" and relative[0].isdigit():
        try:
            return now_ns - int(parse_duration(relative) * 1e9)
        except ValueError:
            pass
    if value.replace(".", "", 1).isdigit():
        return int(float(value) * 1e9)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TimeParseError(
            f"expected RFC 3339 (2026-11-22T07:00:00Z), relative (-2h, 30m) or 'now', "
            f"got: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000
