"""Times as people type them: RFC 3339 ("2026-11-22T07:00:00Z"), relative ("-2h", "1h" = an
hour ago, "now"), or unix seconds. All results are unix nanoseconds."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.config import parse_duration


class TimeParseError(ValueError):
    pass


def parse_time(text: str, *, now_ns: int) -> int:
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
