"""Rebuild the demo's texts (monitor/cli/demo_data/*.jsonl) from the repository's corpora/.

    python monitor/cli/demo_data/build.py

Deterministic (rows ordered by sha256 of a seed and their id, as corpora/build.py does);
texts are unchanged except completions, clipped at a word boundary. See README.md here
for what is selected and the licences.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

SEED = 20251125
HERE = Path(__file__).resolve().parent
CORPORA = HERE.parents[2] / "corpora"
NEW_TOPIC = "cash_atm"  # the banking77 group the demo's phase 2 brings in
PER_INTENT = {"train": 8, "test": 6}  # usual prompts per intent and split
COMPLETIONS = 200
COMPLETION_CHARS = 180
TOXIC = {"convabuse": 200, "davidson_hate_offensive": 100}

Row = dict[str, Any]


def load(name: str) -> list[Row]:
    with (CORPORA / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ordered(rows: list[Row], target: str) -> list[Row]:
    return sorted(rows, key=lambda r: hashlib.sha256(
        f"{SEED}:{target}:{r['id']}".encode()).hexdigest())


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", limit // 2, limit)
    return text[: cut if cut > 0 else limit].rstrip(" ,;:") + " …"


def prompts() -> list[Row]:
    by_stratum: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in load("banking77"):
        by_stratum[(row["label"], row["split"])].append(row)
    chosen = []
    for (label, split), rows in sorted(by_stratum.items()):
        k = len(rows) if rows[0]["group"] == NEW_TOPIC else PER_INTENT[split]
        chosen += ordered(rows, f"prompts:{label}:{split}")[:k]
    return [{"id": r["id"], "text": r["text"], "group": r["group"],
             "split": r["split"]} for r in ordered(chosen, "prompts")]


def completions() -> list[Row]:
    rows = ordered(load("arena_hard_responses"), "completions")[:COMPLETIONS]
    return [{"id": r["id"], "text": clip(r["text"], COMPLETION_CHARS)} for r in rows]


def toxic() -> list[Row]:
    rows = load("toxicity")
    chosen = []
    for dataset, k in TOXIC.items():
        pool = [r for r in rows if r["dataset"] == dataset and r["toxic"] == 1]
        chosen += ordered(pool, f"toxic:{dataset}")[:k]
    return [{"id": r["id"], "dataset": r["dataset"], "toxic": 1, "text": r["text"]}
            for r in ordered(chosen, "toxic")]


def write(name: str, rows: list[Row]) -> None:
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    write("prompts", prompts())
    write("completions", completions())
    write("toxic_completions", toxic())
