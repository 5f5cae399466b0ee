"""The building blocks of the report pages that every detector's section uses: number,
share and time formats, the two window colours, a mapping onto chart coordinates, and
small pieces of markup. Every text that came from outside goes through `escape`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

from monitor.core.records import rfc3339

REFERENCE_COLOUR, CURRENT_COLOUR = "#3b6ea8", "#d9622b"


def num(value: Any) -> str:
    """A number for people: thousands separated, three significant digits, "-" for none."""
    if value is None or isinstance(value, bool):
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if not isinstance(value, float) or not math.isfinite(value):
        return str(value)
    if value != 0 and abs(value) < 1e-4:
        return f"{value:.1e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "-"


def sampled(rate: float | None) -> str:
    """A text detector's sampling rate, as its report states it."""
    if rate is None:
        return "-"
    return "every call" if rate >= 1 else f"{rate:.1%} of the calls (the segment's sample)"


def time(ns: int) -> str:
    return rfc3339(ns)[:19].replace("T", " ") + " UTC" if ns else "-"


def muted(text: str) -> str:
    return f'<p class="muted">{escape(text)}</p>'


def table(head: Sequence[tuple[str, bool]], rows: Sequence[str]) -> str:
    """A table of ready-made `<tr>` rows under `head`: (title, numeric) per column."""
    cells = "".join(f"<th class=num>{escape(t)}</th>" if numeric else f"<th>{escape(t)}</th>"
                    for t, numeric in head)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def key(colour: str) -> str:
    """A coloured dot for a figure's caption."""
    return f'<span class="key" style="background:{colour}"></span>'


def share_bar(share: float, colour: str) -> str:
    width = max(1, round(share * 80))
    return (f'{share:.0%} <span class="bar" style="width:{width}px;background:{colour}">'
            "</span>")


def scale(values: Sequence[float], low: float, high: float) -> Callable[[float], float]:
    """A function mapping [min(values), max(values)] onto [low, high]."""
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    span = hi - lo or 1.0
    mid = (low + high) / 2
    if hi == lo:
        return lambda _v: mid
    return lambda v: low + (v - lo) / span * (high - low)
