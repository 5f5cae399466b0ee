"""Compare benchmark: time and memory of one `driftwatch compare` as the store grows.

    PYTHONPATH=$PWD .venv/bin/python bench/compare.py --calls 200000 --steps 4

Fills a store with calls of one service on two models (half each, one 20% slower), in
steps, and after each step times `Comparer.run` (the daemon's own, without the embedding
models: latency, errors and tokens) and the peak memory it allocated (tracemalloc, which
numpy reports to). The sample caps
(`compare.sample_cap`, `--cap`) keep both flat while the store grows; without them a
compare would read every call of both sides.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from monitor.core.components import WriteBatch
from monitor.core.records import LLMCall
from monitor.jobs.canary.comparer import Comparer, Selector
from monitor.jobs.canary.config import CompareConfig
from monitor.store.comparisons import SqliteComparisons
from monitor.store.sqlite import SqliteStore

HOUR_NS = 3600 * 10**9


def calls(n: int, start_ns: int, rng: random.Random, offset: int) -> list[LLMCall]:
    out = []
    for i in range(n):
        model = "gpt-4o" if i % 2 else "gpt-4o-mini"
        out.append(LLMCall(
            trace_id=f"{rng.getrandbits(128) | 1:032x}", span_id=f"{offset + i + 1:016x}",
            parent_span_id=None, service="support-bot", provider="openai",
            request_model=model, response_model=model, operation="chat",
            start_ns=start_ns + rng.randrange(HOUR_NS // 2),
            duration_s=rng.lognormvariate(0, 0.4) * (1.2 if i % 2 == 0 else 1.0),
            input_tokens=rng.randrange(300, 500), output_tokens=rng.randrange(100, 300),
            prompt="How do I reset my card PIN? " * 8, completion="Open the app. " * 20))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls in the store at the end")
    parser.add_argument("--steps", type=int, default=4, help="compares, one after each step")
    parser.add_argument("--cap", type=int, default=5_000, help="compare.sample_cap")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        store = SqliteStore(path, synchronous="NORMAL")
        comparer = Comparer(CompareConfig(sample_cap=args.cap), store, SqliteComparisons(path))
        start = time.time_ns() - HOUR_NS
        per_step, written = args.calls // args.steps, 0
        print(f"{'calls in store':>15} {'compare s':>10} {'peak MiB':>9}  verdict")
        for _ in range(args.steps):
            for i in range(0, per_step, 10_000):
                batch = calls(min(10_000, per_step - i), start, rng, written)
                store.write(WriteBatch(calls=batch))
                written += len(batch)
            tracemalloc.start()
            began = time.perf_counter()
            found = comparer.run("support-bot", Selector("model", "gpt-4o"),
                                 Selector("model", "gpt-4o-mini"), since_ns=start,
                                 until_ns=time.time_ns())
            took = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"{written:>15,} {took:>10.2f} {peak:>9.1f}  {found['verdict']}")
        store.close()


if __name__ == "__main__":
    main()
