"""Compare benchmark: time and memory of one `driftwatch compare` as the store grows.

    PYTHONPATH=$PWD .venv/bin/python bench/compare.py --calls 200000 --steps 4

Fills a store with calls of one service on two models (half each, one 20% slower), in
steps, and after each step times `Comparer.run` (the daemon's own, without the embedding
models: latency, errors, tokens and cost per call) and the peak memory it allocated
(tracemalloc, which numpy reports to). Each model runs as its own release
(`service.version` 1.0 for gpt-4o, 2.0 for the slower gpt-4o-mini), so `--by version`
times the version selectors; `--judged 0.5` has half of the calls judged by two
evaluators, whose pass rates and scores are compared too. The sample caps
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
from monitor.core.evaluations import Evaluation
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
            prompt="How do I reset my card PIN? " * 8, completion="Open the app. " * 20,
            cost_usd=rng.uniform(0.001, 0.004) * (1.5 if i % 2 else 1.0),
            service_version="1.0" if i % 2 else "2.0"))
    return out


def judged(batch: list[LLMCall], share: float, rng: random.Random) -> list[Evaluation]:
    """`share` of the calls judged for relevance (score and label) and tone (a score)."""
    out = []
    for call in batch:
        if rng.random() >= share:
            continue
        score = rng.betavariate(5, 2)
        for name, label in (("relevance", "relevant" if score >= 0.5 else "irrelevant"),
                            ("tone", None)):
            out.append(Evaluation(name=name, time_ns=call.start_ns, source="log",
                                  trace_id=call.trace_id, span_id=call.span_id,
                                  score=score, label=label))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls in the store at the end")
    parser.add_argument("--steps", type=int, default=4, help="compares, one after each step")
    parser.add_argument("--cap", type=int, default=5_000, help="compare.sample_cap")
    parser.add_argument("--by", choices=("model", "version"), default="model",
                        help="the sides' selector: model=... or version=...")
    parser.add_argument("--judged", type=float, default=0.0,
                        help="share of calls with two evaluations (0: none)")
    args = parser.parse_args()
    a, b = ((Selector("model", "gpt-4o"), Selector("model", "gpt-4o-mini"))
            if args.by == "model" else
            (Selector("service_version", "1.0"), Selector("service_version", "2.0")))
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
                store.write(WriteBatch(calls=batch, evaluations=judged(batch, args.judged, rng)))
                written += len(batch)
            tracemalloc.start()
            began = time.perf_counter()
            found = comparer.run("support-bot", a, b, since_ns=start, until_ns=time.time_ns())
            took = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            print(f"{written:>15,} {took:>10.2f} {peak:>9.1f}  {found['verdict']}")
        store.close()


if __name__ == "__main__":
    main()
