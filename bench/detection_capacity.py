"""How many busy segments the text detectors keep up with: per-window samples against the
shared nested sample, side by side, on the same simulated traffic.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py                 # 2 services
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py --services 4 --hours 3
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py --model-texts-per-s 0

Writes steady traffic (`--rate` calls/s per service, one model each, so two segments per
service: the whole service and its model) with real long prompts and completions from
corpora/long_texts.jsonl into a temporary store, backdated over a baseline hour and
`--hours` more. Then, for each design, on its own copy of that store, builds the real drift
and toxicity jobs with the default config and runs them at simulated instants (`run(now_ns)`
every interval, as the scheduler would), counting:

- texts embedded: cache misses of the shared embedder, per segment-hour (exact);
- job CPU-seconds per segment-hour, without the model: the embedder here is a 384-dim word
  hash named like the shipped MiniLM (so the toxicity head shares it and nothing loads a
  model); what the model would add is texts embedded divided by `--model-texts-per-s`
  (default: measured now on 32 long completions with the default embedder, one thread; 0
  skips it and uses the issue's 11 texts/s for long texts).

"per-window" is the old sampling (each read takes the `sample_cap` smallest span ids of its
own window); "nested" is the shared sample of monitor/jobs/sampling.py.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.embedder import CachedEmbedder, Embedder, MemoryCache  # noqa: E402
from detectors.toxicity import ToxicityHead  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.core.components import WriteBatch  # noqa: E402
from monitor.core.records import LLMCall  # noqa: E402
from monitor.daemon import DETECTORS  # noqa: E402
from monitor.jobs.plugin import DetectorDeps, details_readers  # noqa: E402
from monitor.jobs.references import References  # noqa: E402
from monitor.jobs.sampling import SampleRates  # noqa: E402
from monitor.jobs.texts import TextSampler  # noqa: E402
from monitor.store.history import SqliteHistory  # noqa: E402
from monitor.store.sqlite import SqliteStore  # noqa: E402

S = 10**9
HOUR = 3600 * S
T0 = 1_760_000_000 * S
LONG_TEXTS_PER_S = 11.0  # the figure for the default embedder, one thread


class HashEmbedder(Embedder):
    """Each word hashed into one of 384 dimensions: a stand-in that costs almost nothing."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i, len(text) % 384] += 1.0  # never all zero, whatever the script
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=2).digest()
                out[i, int.from_bytes(digest) % 384] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def long_texts() -> list[tuple[str, str]]:
    with (REPO / "corpora" / "long_texts.jsonl").open() as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(r["prompt"], r["completion"]) for r in rows]


def write_traffic(path: Path, services: int, rate: float, hours: float) -> int:
    """Steady traffic for every service; distinct texts (a counter suffix), random span ids."""
    rng = random.Random(3)
    corpus = long_texts()
    store = SqliteStore(path)
    every = int(S / rate)
    end = T0 + int((hours + 1) * HOUR)
    written = 0
    for s in range(services):
        batch: list[LLMCall] = []
        for i, at in enumerate(range(T0 + rng.randrange(every), end, every)):
            prompt, completion = corpus[rng.randrange(len(corpus))]
            batch.append(LLMCall(
                trace_id=f"{rng.getrandbits(128):032x}", span_id=f"{rng.getrandbits(64):016x}",
                parent_span_id=None, service=f"svc{s:02d}", provider="openai",
                request_model="gpt-4o", response_model="gpt-4o", operation="chat",
                start_ns=at, duration_s=1.0, prompt=f"{prompt}\n#{s}.{i}",
                completion=f"{completion}\n#{s}.{i}"))
            if len(batch) == 5_000:
                store.write(WriteBatch(calls=batch))
                written, batch = written + len(batch), []
        store.write(WriteBatch(calls=batch))
        written += len(batch)
    store.close()
    return written


def run_design(path: Path, *, nested: bool, hours: float) -> dict[str, float]:
    config = load_config(None, environ={})
    store = SqliteStore(path)
    history = SqliteHistory(path, details=details_readers(DETECTORS))
    head = ToxicityHead.load()
    embedder = CachedEmbedder(HashEmbedder(head.embedding_model), MemoryCache(2_000_000))
    sections = [DETECTORS[name].section(config) for name in ("drift", "toxicity")]
    horizon = max(s.window for s in sections)
    texts = TextSampler(store, history, embedder, SampleRates(store, horizon, nested=nested))
    references = References(store, history, auto_window_s=horizon,
                            auto_min_calls=max(s.min_samples for s in sections))
    deps = DetectorDeps(store=store, history=history, references=references, texts=texts,
                        retention_s=config.store.retention)
    jobs = [(name, section.interval, DETECTORS[name].build(section, deps).job)
            for name, section in zip(("drift", "toxicity"), sections, strict=True)]
    cpu = 0.0
    worst = 0.0
    start, end = T0 + HOUR, T0 + int((hours + 1) * HOUR)  # the first hour is the baseline
    tick = int(min(interval for _, interval, _ in jobs) * S)
    for now in range(start + tick, end + 1, tick):
        for _name, interval, job in jobs:
            if (now - start) % int(interval * S):
                continue
            began = time.process_time()
            job.run(now)
            took = time.process_time() - began
            cpu += took
            worst = max(worst, took / interval)
    history.close()
    store.close()
    return {"cpu_s": cpu, "embedded": float(embedder.stats.misses), "worst_share": worst}


def model_texts_per_s() -> float:
    from detectors.embedder import LocalEmbedder
    from monitor.jobs.embeddings import limit_threads

    completions = [c for _, c in long_texts()[:34]]
    embedder = LocalEmbedder()
    limit_threads(1, models=[embedder])
    embedder.load()
    embedder.embed(completions[:2])
    began = time.process_time()
    embedder.embed(completions[2:])
    return (len(completions) - 2) / (time.process_time() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2)
    parser.add_argument("--rate", type=float, default=5.0, help="calls/s per service")
    parser.add_argument("--hours", type=float, default=2.0, help="after a baseline hour")
    parser.add_argument("--model-texts-per-s", type=float, default=None,
                        help="texts the model embeds per CPU-second (default: measure)")
    args = parser.parse_args()
    per_s = args.model_texts_per_s
    if per_s is None:
        per_s = model_texts_per_s()
        print(f"default embedder: {per_s:.1f} long completions per CPU-second (measured)")
    elif per_s == 0:
        per_s = LONG_TEXTS_PER_S
    segment_hours = 2 * args.services * args.hours
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "traffic.db"
        began = time.perf_counter()
        n = write_traffic(base, args.services, args.rate, args.hours)
        print(f"{n} calls: {args.services} services x 2 segments, {args.rate:g} calls/s, "
              f"{args.hours:g} h after a baseline hour ({time.perf_counter() - began:.0f}s)")
        print(f"{'design':<11} {'texts/seg-h':>11} {'job cpu-s/seg-h':>15} "
              f"{'+model cpu-s/seg-h':>18} {'segments/core':>13} {'worst run/interval':>18}")
        for design, nested in (("per-window", False), ("nested", True)):
            path = Path(tmp) / f"{design}.db"
            shutil.copy(base, path)
            got = run_design(path, nested=nested, hours=args.hours)
            texts = got["embedded"] / segment_hours
            job_cpu = got["cpu_s"] / segment_hours
            total = job_cpu + texts / per_s
            print(f"{design:<11} {texts:>11.0f} {job_cpu:>15.1f} {total:>18.1f} "
                  f"{3600 / total:>13.1f} {got['worst_share']:>18.1%}")
            path.unlink()


if __name__ == "__main__":
    main()
