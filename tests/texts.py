"""Real text for tests, from the licensed subsets in corpora/ (see corpora/README.md)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

CORPORA = Path(__file__).resolve().parent.parent / "corpora"


@cache
def rows(name: str) -> tuple[dict[str, Any], ...]:
    with (CORPORA / f"{name}.jsonl").open() as f:
        return tuple(json.loads(line) for line in f if line.strip())


def banking_prompts(n: int, offset: int = 0) -> list[str]:
    """n distinct banking77 customer questions."""
    texts = [r["text"] for r in rows("banking77")]
    return texts[offset: offset + n]


def long_pairs(n: int) -> list[tuple[str, str]]:
    """n (prompt, completion) pairs of 300-1,500 characters."""
    return [(r["prompt"], r["completion"]) for r in rows("long_texts")[:n]]
