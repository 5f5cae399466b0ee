#!/usr/bin/env python3
"""Rebuild the small, licensed text subsets in corpora/ from the shared datasets.

    python corpora/build.py [SRC] [--out DIR]

SRC defaults to /work/shared/datasets (the folder with banking77/, clinc150/,
... each holding a converted data.jsonl and a README.md). DIR defaults to the
folder this script is in. Standard library only. The committed *.jsonl files
are the output of this script; nothing in the repository needs SRC at run time.

Selection is deterministic and independent of Python's `random` module: rows
are ordered by sha256("<SEED>:<target>:<source id>") and the first k of each
stratum are taken, so the same inputs always give byte-identical outputs.
Per-file row counts, selection rules and licences are in corpora/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

SEED = 20250601

Row = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def load(src: Path, rel: str) -> list[Row]:
    with (src / rel).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def order(
    rows: Iterable[Row], target: str, key: Callable[[Row], str] = lambda r: str(r["id"])
) -> list[Row]:
    """Rows in a fixed pseudo-random order (sha256 of seed, target and id)."""

    def h(r: Row) -> str:
        return hashlib.sha256(f"{SEED}:{target}:{key(r)}".encode()).hexdigest()

    return sorted(rows, key=h)


def take(rows: Iterable[Row], target: str, k: int) -> list[Row]:
    return order(rows, target)[:k]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


def has_text(r: Row, field: str = "text") -> bool:
    return isinstance(r.get(field), str) and r[field].strip() != ""


def dedupe(rows: list[Row]) -> list[Row]:
    """Keep the first row of each normalised text (rows must already be ordered)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        t = norm(r["text"])
        if t not in seen:
            seen.add(t)
            out.append(r)
    return out


def clip(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, at the last whitespace before the limit."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    i = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    if i < limit // 2:  # no usable word boundary (long code token, URL): hard cut
        i = limit
    return text[:i].rstrip()


def write(path: Path, rows: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n")


# --------------------------------------------------------------------------- targets


def banking77(src: Path) -> list[Row]:
    """39 queries per intent (20 train + 19 test) over all 77 intents = 3,003 rows."""
    rows = [r for r in load(src, "banking77/data.jsonl") if has_text(r)]
    strata: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        strata[(r["label"], r["split"])].append(r)
    labels = sorted({r["label"] for r in rows})
    assert len(labels) == 77, len(labels)
    out = []
    for label in labels:
        for split, k in (("train", 20), ("test", 19)):
            picked = dedupe(order(strata[(label, split)], "banking77"))[:k]
            assert len(picked) == k, (label, split, len(picked))
            out += picked
    keep = ("id", "text", "label", "group", "split")
    return [{f: r[f] for f in keep} for r in order(out, "banking77/out")]


def clinc150(src: Path) -> list[Row]:
    """In-scope: 20 per intent (10 train, 2 val, 8 test) x 150 = 3,000.
    Out-of-scope: 600 of the 1,200 (all 100 train, all 100 val, 400 of 1,000 test)."""
    rows = [r for r in load(src, "clinc150/data.jsonl") if has_text(r)]
    strata: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        strata[(r["label"], r["split"])].append(r)
    intents = sorted({r["label"] for r in rows if not r["is_oos"]})
    assert len(intents) == 150, len(intents)
    out = []
    for label in intents:
        for split, k in (("train", 10), ("val", 2), ("test", 8)):
            picked = order(strata[(label, split)], "clinc150")[:k]
            assert len(picked) == k, (label, split, len(picked))
            out += picked
    for split, k in (("train", 100), ("val", 100), ("test", 400)):
        picked = order(strata[("oos", split)], "clinc150")[:k]
        assert len(picked) == k, ("oos", split, len(picked))
        out += picked
    out = dedupe(order(out, "clinc150/out"))
    keep = ("id", "text", "label", "domain", "is_oos", "split")
    return [{f: r[f] for f in keep} for r in out]


def jailbreak(src: Path) -> list[Row]:
    """300 of the 650 distinct in-the-wild jailbreak prompts (exact duplicates excluded)."""
    rows = [
        r
        for r in load(src, "inthewild_jailbreak_prompts/data.jsonl")
        if has_text(r) and not r["duplicate"]
    ]
    picked = sorted(dedupe(order(rows, "jailbreak"))[:300], key=lambda r: int(r["id"]))
    assert len(picked) == 300
    return [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in picked]


ARENA_MODELS = ("gpt-4-0314", "gpt-3.5-turbo-0125")
ARENA_PAIRS = 300


def arena_hard(src: Path) -> tuple[list[Row], list[Row]]:
    """300 of the 500 v0.1 prompts, each answered by both gpt-4-0314 and gpt-3.5-turbo-0125
    (all 500 pairs would take ~2.1 MB, too much for the ~6 MB budget of corpora/)."""
    prompts = {r["id"]: r for r in load(src, "arena_hard/prompts.jsonl") if r["version"] == "v0.1"}
    by_model: dict[str, dict[str, Row]] = defaultdict(dict)
    for r in load(src, "arena_hard/responses.jsonl"):
        if r["model"] in ARENA_MODELS and has_text(r):
            by_model[r["model"]][r["prompt_id"]] = r
    both = sorted(set(prompts).intersection(*(set(by_model[m]) for m in ARENA_MODELS)))
    assert len(both) == 500, len(both)
    ids = sorted(r["id"] for r in take(({"id": i} for i in both), "arena_hard", ARENA_PAIRS))
    out_prompts = [{"id": i, "text": prompts[i]["text"], "label": prompts[i]["label"]} for i in ids]
    out_resp = [
        {"id": by_model[m][i]["id"], "prompt_id": i, "model": m, "text": by_model[m][i]["text"]}
        for m in ARENA_MODELS
        for i in ids
    ]
    return out_prompts, out_resp


TOXICITY_PLAN: tuple[tuple[str, dict[int, int] | None, int, Callable[[Row], bool] | None], ...] = (
    # dataset, {toxic value: rows} or None for a natural mix, natural-mix size, row filter
    ("davidson_hate_offensive", {1: 400, 0: 400}, 0, None),
    ("convabuse", {1: 200, 0: 400}, 0, None),
    ("stormfront_hate", {1: 200, 0: 200}, 0, None),
    # only rows annotated for all 8 categories: on the others toxic=0 just means
    # "none of the categories that were annotated", a noisy negative
    ("openai_moderation", None, 300, lambda r: r["complete"]),
    ("wikipedia_talk_toxicity", None, 300, None),
)


def toxicity(src: Path) -> tuple[list[Row], dict[str, int]]:
    out: list[Row] = []
    dropped: dict[str, int] = {}
    for name, per_class, n_natural, keep in TOXICITY_PLAN:
        rows = [
            r
            for r in load(src, f"{name}/data.jsonl")
            if has_text(r) and r.get("toxic") in (0, 1) and (keep is None or keep(r))
        ]
        # the same text with both labels (e.g. convabuse "no") is unusable ground truth: drop it;
        # otherwise keep one row per normalised text
        labels_of: dict[str, set[int]] = defaultdict(set)
        for r in rows:
            labels_of[norm(r["text"])].add(r["toxic"])
        clean = [r for r in rows if len(labels_of[norm(r["text"])]) == 1]
        dropped[name] = len({norm(r["text"]) for r in rows}) - len({norm(r["text"]) for r in clean})
        pool = dedupe(order(clean, f"toxicity/{name}"))
        if per_class is None:
            picked = pool[:n_natural]
            assert len(picked) == n_natural, (name, len(picked))
        else:
            picked = []
            for value, k in per_class.items():
                cls = [r for r in pool if r["toxic"] == value][:k]
                assert len(cls) == k, (name, value, len(cls))
                picked += cls
        out += [
            {"id": f"{name}:{r['id']}", "dataset": name, "toxic": r["toxic"], "text": r["text"]}
            for r in order(picked, f"toxicity/{name}/out")
        ]
    return out, dropped


LONG_MIN, LONG_MAX = 300, 1500

LONG_PLAN = (
    # source name, rows wanted (None = every eligible pair)
    ("arena_hard:gpt-4-0613", 420),
    ("arena_hard:o3-mini-2025-01-31", 340),
    ("self_instruct_user_oriented", 630),
    ("mt_bench_vicuna", None),
    ("hh_rlhf_harmless_test", None),
)


def clip_pair(prompt: str, completion: str) -> tuple[str, str, bool] | None:
    """Fit prompt + completion into LONG_MAX characters, cutting at word boundaries.
    The prompt keeps at least half the budget when both are long. None if too short."""
    prompt, completion = prompt.strip(), completion.strip()
    if not prompt or not completion or len(prompt) + len(completion) < LONG_MIN:
        return None
    if len(prompt) + len(completion) <= LONG_MAX:
        return prompt, completion, False
    p = clip(prompt, max(LONG_MAX // 2, LONG_MAX - len(completion)))
    c = clip(completion, LONG_MAX - len(p))
    if not p or not c or len(p) + len(c) < LONG_MIN:
        return None
    return p, c, True


def long_texts(src: Path) -> list[Row]:
    pairs: dict[str, list[Row]] = defaultdict(list)

    arena_prompts = {r["id"]: r["text"] for r in load(src, "arena_hard/prompts.jsonl")}
    for r in load(src, "arena_hard/responses.jsonl"):
        source = f"arena_hard:{r['model']}"
        pairs[source].append(
            {"id": r["id"], "prompt": arena_prompts[r["prompt_id"]], "completion": r["text"]}
        )

    si_prompts = {
        r["id"]: r["text"] for r in load(src, "self_instruct_user_oriented/prompts.jsonl")
    }
    for r in load(src, "self_instruct_user_oriented/responses.jsonl"):
        pairs["self_instruct_user_oriented"].append(
            {"id": r["id"], "prompt": si_prompts[r["prompt_id"]], "completion": r["text"]}
        )

    for r in load(src, "mt_bench_vicuna/data.jsonl"):
        if r.get("reference_answer"):
            pairs["mt_bench_vicuna"].append(
                {"id": r["id"], "prompt": r["text"], "completion": r["reference_answer"]}
            )

    for r in load(src, "hh_rlhf_harmless_test/data.jsonl"):
        pairs["hh_rlhf_harmless_test"].append(
            {"id": r["id"], "prompt": r["last_user_turn"], "completion": r["chosen_response"]}
        )

    out: list[Row] = []
    seen: set[tuple[str, str]] = set()  # identical (prompt, completion) pairs are kept once
    for source, k in LONG_PLAN:
        picked = []
        for r in order(pairs[source], f"long_texts/{source}"):
            fitted = clip_pair(r["prompt"], r["completion"])
            if fitted is None:
                continue
            p, c, clipped = fitted
            if (norm(p), norm(c)) in seen:
                continue
            seen.add((norm(p), norm(c)))
            dataset = source.split(":")[0]
            picked.append(
                {
                    "id": f"{dataset}:{r['id']}",
                    "prompt": p,
                    "completion": c,
                    "source": source,
                    "clipped": clipped,
                }
            )
            if k is not None and len(picked) == k:
                break
        assert k is None or len(picked) == k, (source, len(picked))
        out += picked
    return order(out, "long_texts/out")


# --------------------------------------------------------------------------- main


def verify(name: str, rows: list[Row], text_fields: tuple[str, ...] = ("text",)) -> None:
    ids = [r["id"] for r in rows]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        sys.exit(f"{name}: duplicate ids {dup[:5]}")
    for r in rows:
        for f in text_fields:
            if not has_text(r, f):
                sys.exit(f"{name}: empty {f} in row {r['id']}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "src",
        nargs="?",
        default="/work/shared/datasets",
        type=Path,
        help="shared datasets folder (default: /work/shared/datasets)",
    )
    ap.add_argument(
        "--out",
        default=Path(__file__).resolve().parent,
        type=Path,
        help="output folder (default: the folder of this script)",
    )
    args = ap.parse_args()
    src: Path = args.src
    if not (src / "banking77" / "data.jsonl").is_file():
        sys.exit(f"{src} does not look like the shared datasets folder (no banking77/data.jsonl)")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    arena_prompts, arena_responses = arena_hard(src)
    tox, tox_dropped = toxicity(src)
    targets: list[tuple[str, list[Row], tuple[str, ...]]] = [
        ("banking77", banking77(src), ("text",)),
        ("clinc150", clinc150(src), ("text",)),
        ("jailbreak", jailbreak(src), ("text",)),
        ("arena_hard_prompts", arena_prompts, ("text",)),
        ("arena_hard_responses", arena_responses, ("text",)),
        ("toxicity", tox, ("text",)),
        ("long_texts", long_texts(src), ("prompt", "completion")),
    ]
    total = 0
    for name, rows, fields in targets:
        verify(name, rows, fields)
        path = out / f"{name}.jsonl"
        write(path, rows)
        size = path.stat().st_size
        total += size
        print(f"{name + '.jsonl':28} {len(rows):6,d} rows {size / 1e6:6.2f} MB")
    print(f"{'total':28} {'':11} {total / 1e6:6.2f} MB")

    # breakdowns quoted in README.md
    rows_of = {name: rows for name, rows, _ in targets}
    print("banking77 by split:", dict(Counter(r["split"] for r in rows_of["banking77"])))
    print(
        "clinc150 by (is_oos, split):",
        dict(sorted(Counter((r["is_oos"], r["split"]) for r in rows_of["clinc150"]).items())),
    )
    print(
        "arena_hard_responses by model:",
        dict(Counter(r["model"] for r in rows_of["arena_hard_responses"])),
    )
    print(
        "toxicity by (dataset, toxic):",
        dict(sorted(Counter((r["dataset"], r["toxic"]) for r in rows_of["toxicity"]).items())),
    )
    print("toxicity texts dropped for conflicting labels:", tox_dropped)
    lt = rows_of["long_texts"]
    print("long_texts by source:", dict(Counter(r["source"] for r in lt)))
    print(
        "long_texts clipped:",
        sum(r["clipped"] for r in lt),
        "pair length min/max:",
        min(len(r["prompt"]) + len(r["completion"]) for r in lt),
        max(len(r["prompt"]) + len(r["completion"]) for r in lt),
    )


if __name__ == "__main__":
    main()
