"""How many busy segments the text detectors keep up with: per-window samples against the
shared nested sample, side by side, on the same simulated traffic.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py                 # 2 services
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py --services 1 --hours 3
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py --toxicity-window 1h
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_capacity.py --model-texts-per-s 0

Writes steady traffic (`--rate` calls/s per service, one model each, so two segments per
service: the whole service and its model) with real long prompts and completions from
corpora/long_texts.jsonl into a temporary store, backdated over a baseline hour and
`--hours` more. Then, for each design, on its own copy of that store, builds the real drift
and toxicity jobs with the default config and runs them at simulated instants (`run(now_ns)`
every interval, as the scheduler would). Per segment-hour figures are the steady state: the
hours after the first one, whose runs also freeze the baseline samples (a one-off).

- texts embedded: cache misses of the shared embedder, per segment-hour (exact);
- job CPU-seconds per segment-hour, without the model: the embedder here is a 384-dim word
  hash named like the shipped MiniLM (so the toxicity head shares it and nothing loads a
  model);
- model CPU-seconds per segment-hour: texts embedded times the default model's CPU-seconds
  per text, measured on one thread on `--model-sample` texts drawn from the very texts that
  design embedded (its mix of short prompts and long completions), at 256 and at 128 word
  pieces (`--model-texts-per-s` replaces the measurement with a fixed rate).

"per-window" is the old sampling (each read takes the `sample_cap` smallest span ids of its
own window) at the old 256 word pieces and the old defaults (`sample_cap: 2000` for both
jobs, `toxicity.window: 15m`): the design the issue measured. "nested" is the shared sample
of monitor/jobs/sampling.py at the default config, with `--sample-cap` and
`--toxicity-window` when given. The last lines size the nested design at 128 for `--target`
segments on 2 cores with ingest running, and say what the toxicity test can see at the window
sizes each design read.
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
from typing import Any

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
#: the per-window design's settings: the defaults before the nested sample (issue 11)
PER_WINDOW_DEFAULTS = {"DRIFTWATCH_DRIFT__SAMPLE_CAP": "2000",
                       "DRIFTWATCH_TOXICITY__SAMPLE_CAP": "2000",
                       "DRIFTWATCH_TOXICITY__WINDOW": "15m"}


class HashEmbedder(Embedder):
    """Each word hashed into one of 384 dimensions: a stand-in that costs almost nothing.
    Keeps every text it is given (the cache's misses: what the model would embed)."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
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


def run_design(path: Path, *, nested: bool, hours: float,
               environ: dict[str, str]) -> dict[str, Any]:
    config = load_config(None, environ=environ)
    store = SqliteStore(path)
    history = SqliteHistory(path, details=details_readers(DETECTORS))
    head = ToxicityHead.load()
    model = HashEmbedder(head.embedding_model)
    embedder = CachedEmbedder(model, MemoryCache(2_000_000))
    sections = [DETECTORS[name].section(config) for name in ("drift", "toxicity")]
    horizon = max(s.window for s in sections)
    texts = TextSampler(store, history, embedder, SampleRates(store, horizon, nested=nested))
    references = References(store, history, auto_window_s=horizon,
                            auto_min_calls=max(s.min_samples for s in sections))
    deps = DetectorDeps(store=store, history=history, references=references, texts=texts,
                        retention_s=config.store.retention)
    jobs = [(name, section.interval, DETECTORS[name].build(section, deps).job)
            for name, section in zip(("drift", "toxicity"), sections, strict=True)]
    cpu = steady_cpu = 0.0
    worst = 0.0
    start, end = T0 + HOUR, T0 + int((hours + 1) * HOUR)  # the first hour is the baseline
    warm = start + HOUR  # steady state: after the first hour, whose runs freeze the baseline
    warm_seen = 0
    sizes: dict[str, list[tuple[int, int]]] = {name: [] for name, _, _ in jobs}
    tick = int(min(interval for _, interval, _ in jobs) * S)
    for now in range(start + tick, end + 1, tick):
        if now - tick == warm:
            warm_seen = len(model.seen)
        for name, interval, job in jobs:
            if (now - start) % int(interval * S):
                continue
            began = time.process_time()
            results = job.run(now)
            took = time.process_time() - began
            if now > warm:
                sizes[name] += [(r.n_current, r.n_reference) for r in results]
            cpu += took
            steady_cpu += took if now > warm else 0.0
            worst = max(worst, took / interval)
    history.close()
    store.close()
    return {"cpu_s": cpu, "steady_cpu_s": steady_cpu, "embedded": len(model.seen),
            "steady": model.seen[warm_seen:], "worst_share": worst, "sizes": sizes}


def wilson_half_width(n: int, rate: float) -> float:
    """Half the width of the toxicity job's Wilson 95% interval at `rate` of `n` texts."""
    from detectors.toxicity import summarise

    scores = np.zeros(n)
    scores[:round(rate * n)] = 1.0
    got = summarise(scores, [""] * n, threshold=0.5, redact=str, top_k=0)
    return ((got.ci_high or 0.0) - (got.ci_low or 0.0)) / 2


def toxicity_power(n_current: int, n_reference: int, *, base: float, rise: float,
                   runs: int = 400) -> float:
    """Share of windows of `n_current` texts at rate base + rise that the toxicity job's own
    test (defaults: alpha, min_increase, min_samples) finds above a reference of
    `n_reference` texts at `base`. Scores are 0 or 1, so the threshold does not matter."""
    from detectors.toxicity import rate_increase, summarise
    from monitor.jobs.config import ToxicityConfig

    config = ToxicityConfig()
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(runs):
        sides = [(rng.random(n) < p).astype(np.float64) for n, p in
                 ((n_reference, base), (n_current, base + rise))]
        ref, cur = (summarise(x, [""] * len(x), threshold=0.5, redact=str, top_k=0)
                    for x in sides)
        change = rate_increase(ref, cur, alpha=config.alpha, min_increase=config.min_increase,
                               min_samples=config.min_samples)
        hits += bool(change.increased)
    return hits / runs


def model_seconds_per_text(texts: Sequence[str], max_seq_length: int, n: int) -> float:
    """CPU-seconds the default model takes per text, measured on one thread on `n` texts
    drawn (seeded) from `texts`, the very mix of prompts and completions a design embeds.
    Texts are embedded in batches of 32, as embedding ahead does."""
    from detectors.embedder import LocalEmbedder
    from monitor.jobs.embeddings import limit_threads

    drawn = random.Random(max_seq_length).sample(list(texts), min(n, len(texts)))
    embedder = LocalEmbedder(max_seq_length=max_seq_length)
    limit_threads(1, models=[embedder])
    embedder.load()
    embedder.embed(drawn[:2])
    began = time.process_time()
    for i in range(0, len(drawn), 32):
        embedder.embed(drawn[i:i + 32])
    return (time.process_time() - began) / len(drawn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=2)
    parser.add_argument("--rate", type=float, default=5.0, help="calls/s per service")
    parser.add_argument("--hours", type=float, default=2.0, help="after a baseline hour")
    parser.add_argument("--model-texts-per-s", type=float, default=None,
                        help="texts the model embeds per CPU-second, instead of measuring it "
                             "on each design's texts (0: the issue's 11 long texts/s)")
    parser.add_argument("--model-sample", type=int, default=160,
                        help="texts of each design's mix the model cost is measured on")
    parser.add_argument("--ingest-us-per-call", type=float, default=150.0,
                        help="daemon CPU per ingested call (bench/ingest.py: 112-163 µs)")
    parser.add_argument("--target", type=int, default=50, help="busy segments to size for")
    parser.add_argument("--toxicity-window", default=None,
                        help="toxicity.window of the nested design (default: the config's, 1h)")
    parser.add_argument("--sample-cap", type=int, default=None,
                        help="drift.sample_cap and toxicity.sample_cap of the nested design")
    args = parser.parse_args()
    environ = ({"DRIFTWATCH_TOXICITY__WINDOW": args.toxicity_window}
               if args.toxicity_window else {})
    if args.sample_cap:
        environ |= {f"DRIFTWATCH_{job}__SAMPLE_CAP": str(args.sample_cap)
                    for job in ("DRIFT", "TOXICITY")}
    if args.hours < 2:
        parser.error("--hours: at least 2 (the first hour after the baseline is warm-up)")
    segments = 2 * args.services
    steady_hours = args.hours - 1
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "traffic.db"
        began = time.perf_counter()
        n = write_traffic(base, args.services, args.rate, args.hours)
        print(f"{n} calls: {args.services} services x 2 segments, {args.rate:g} calls/s, "
              f"{args.hours:g} h after a baseline hour ({time.perf_counter() - began:.0f}s); "
              f"per segment-hour figures are the steady state (the last {steady_hours:g} h)")
        runs = {}
        for design, nested in (("per-window", False), ("nested", True)):
            path = Path(tmp) / f"{design}.db"
            shutil.copy(base, path)
            # the per-window design keeps its own defaults: the overrides apply to the nested rows
            runs[design] = run_design(path, nested=nested, hours=args.hours,
                                      environ=environ if nested else PER_WINDOW_DEFAULTS)
            path.unlink()
    rows = []
    for design, length in (("per-window", 256), ("nested", 256), ("nested", 128)):
        got = runs[design]
        texts = len(got["steady"]) / (segments * steady_hours)
        if args.model_texts_per_s is None:
            per_text = model_seconds_per_text(got["steady"], length, args.model_sample)
        else:
            per_text = 1 / (args.model_texts_per_s or LONG_TEXTS_PER_S)
        job = got["steady_cpu_s"] / (segments * steady_hours)
        rows.append((design, length, texts, job, texts * per_text, got["worst_share"]))
    today = 3600 / (rows[0][3] + rows[0][4])
    print(f"\n{'design':<11} {'max_seq_length':>14} {'texts/seg-h':>11} {'job cpu-s/seg-h':>15} "
          f"{'model cpu-s/seg-h':>17} {'segments/core':>13} {'x per-window':>12} "
          f"{'worst run/interval':>18}")
    for design, length, texts, job, model, worst in rows:
        per_core = 3600 / (job + model)
        print(f"{design:<11} {length:>14} {texts:>11.0f} {job:>15.1f} {model:>17.1f} "
              f"{per_core:>13.1f} {per_core / today:>12.1f} {worst:>18.1%}")
    _, _, texts, job, model, worst = rows[-1]
    ingest = args.rate * 3600 * args.ingest_us_per_call * 1e-6 / 2  # a service's calls: 2 segments
    on_two = min(3600 / model, 7200 / (model + job + ingest))
    print(f"\nnested, 128: on 2 cores with ingest ({args.ingest_us_per_call:g} µs a call) and "
          f"one embedding thread: {on_two:.0f} busy segments (the embedding thread alone: "
          f"{3600 / model:.0f}); at {args.target} segments a drift or toxicity run takes about "
          f"{worst * args.target / segments:.1%} of its interval (jobs' own CPU; vectors "
          f"embedded ahead); a remote embedder must embed {texts / 3600:.2f} texts/s per "
          f"segment ({args.target * texts / 3600:.0f} texts/s for {args.target})")
    print("\nwindow sample sizes (median per result, steady state) and what toxicity can see "
          "at them: Wilson 95% half-width at a 5% toxic rate, and the share of windows where "
          "the toxicity test (default alpha and 2-point gate) catches 5% -> 7% and 5% -> 8%")
    for design in ("per-window", "nested"):
        sizes = runs[design]["sizes"]
        drift_n = int(np.median([c for c, _ in sizes["drift"]]))
        tox_n = int(np.median([c for c, _ in sizes["toxicity"]]))
        tox_ref = int(np.median([r for _, r in sizes["toxicity"]]))
        half = wilson_half_width(tox_n, 0.05)
        print(f"{design:<11} drift n={drift_n}, toxicity n={tox_n} (reference {tox_ref}): "
              f"+/-{half:.1%}; 5->7%: {toxicity_power(tox_n, tox_ref, base=0.05, rise=0.02):.0%}"
              f", 5->8%: {toxicity_power(tox_n, tox_ref, base=0.05, rise=0.03):.0%}")


if __name__ == "__main__":
    main()
