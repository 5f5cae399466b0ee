"""Drift benchmark: wall time at n = 2,000 vs 2,000 and detection power on real traffic,
driftwatch beside Evidently and Alibi Detect on the same arrays. Prints Markdown tables.

    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python bench/drift.py  # all (14 min)
    .venv/bin/python bench/drift.py --no-power            # timing only (about 2.5 minutes)
    .venv/bin/python bench/drift.py --reps 10 --peer-reps 3 --slow-peer-reps 0  # quick look

On a small machine that other processes share, multi-threaded BLAS spins against them:
timing with `OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1` in front (the peer worker inherits
it) was about twice as fast for ours and most peers here; the full run took 49 minutes
without it at load averages of 5-11. The header says which was used.

Peers run in a virtualenv of their own (so the project's stays clean), fed windows as row
indices into one shared array; the script times ours and theirs in the same run, one after
the other, because the CPU is shared and absolute timings are noisy:

    python3 -m venv /tmp/peers-venv
    /tmp/peers-venv/bin/pip install -c constraints.txt torch==2.13.0   # CPU build, first
    /tmp/peers-venv/bin/pip install -c constraints.txt evidently alibi-detect

Embeddings: all-MiniLM-L6-v2 (128 word pieces) of the corpora/ subsets, cached under
$DRIFTWATCH_EMBEDDING_CACHE (default /tmp/driftwatch-embeddings); the first run embeds
about 7,200 texts (a few minutes on 2 cores).

Power: for each scenario and shifted fraction f, windows of 1,000 calls each (the arena
model swap has 150 per side: only 300 prompts exist), decided at alpha = 0.01. Ours: BH over
its tests plus the effect gates, as the daemon decides; Alibi: its `is_drift` at
p_val = 0.01; Evidently: its own decision (fixed thresholds, or a bootstrap quantile), as
it has no alpha. A fraction counts as detected when at least 80 % of the repetitions
alarm; a method stops at the first fraction it detects, except that every method runs at
5 %: a second table gives each method's detection rate there (the issue's target is a new
topic at 5 % of 1,000 calls caught in at least 9 runs of 10). The 0 % column is the
false-alarm rate; a method whose false alarms exceed what alpha allows is marked as
uncalibrated.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ALPHA = 0.01
DETECTED = 0.8
REPORTED = 0.05  # every method runs at this fraction, for the power-at-5 % table
MIXTURE_FRACTIONS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30)
SWAP_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
FAST_PEERS = ("evidently model", "evidently distance", "evidently mmd",
              "evidently mmd bootstrap", "alibi KSDrift", "alibi ClassifierDrift")
SLOW_PEERS = ("alibi MMDDrift", "alibi LSDDDrift")  # seconds to tens of seconds a call
SLOW_FRACTIONS = (0.0, 0.03, 0.05, 0.10, 0.20, 0.30)  # their coarser grid on 1,000-call windows
PEERS = FAST_PEERS + SLOW_PEERS

# --- peer worker: runs under the peers' Python, imports nothing from driftwatch -----------

PeerMethod = Callable[[np.ndarray, np.ndarray], tuple[bool, float]]


def _peer_methods() -> dict[str, PeerMethod]:
    import pandas as pd
    from alibi_detect.cd import ClassifierDrift, KSDrift, LSDDDrift, MMDDrift
    from evidently.legacy.metrics.data_drift import embedding_drift_methods as evidently
    from sklearn.linear_model import LogisticRegression

    def run_evidently(make: Callable[[int], Any]) -> PeerMethod:
        def run(ref: np.ndarray, cur: np.ndarray) -> tuple[bool, float]:
            cols = [f"e{i}" for i in range(ref.shape[1])]
            method = make(len(ref))
            score, drifted, _ = method(pd.DataFrame(cur, columns=cols),
                                       pd.DataFrame(ref, columns=cols))
            return bool(drifted), float(score)
        return run

    def run_alibi(make: Callable[[np.ndarray], Any]) -> PeerMethod:
        def run(ref: np.ndarray, cur: np.ndarray) -> tuple[bool, float]:
            out = make(ref).predict(cur)["data"]
            return bool(out["is_drift"]), float(np.min(out["p_val"]))
        return run

    return {
        # EmbeddingsDriftMetric's default: the classifier, bootstrapped below 1,000 rows
        "evidently model": run_evidently(lambda n: evidently.model(bootstrap=n < 1000)),
        "evidently distance": run_evidently(lambda n: evidently.distance()),
        "evidently mmd": run_evidently(lambda n: evidently.mmd()),
        "evidently mmd bootstrap": run_evidently(lambda n: evidently.mmd(bootstrap=True)),
        "alibi KSDrift": run_alibi(lambda ref: KSDrift(ref, p_val=ALPHA)),  # Bonferroni
        "alibi ClassifierDrift": run_alibi(lambda ref: ClassifierDrift(
            ref, LogisticRegression(max_iter=1000), backend="sklearn", p_val=ALPHA,
            n_folds=5, preds_type="probs", binarize_preds=False)),
        "alibi MMDDrift": run_alibi(lambda ref: MMDDrift(ref, backend="pytorch", p_val=ALPHA,
                                                         device="cpu")),  # 100 permutations
        "alibi LSDDDrift": run_alibi(lambda ref: LSDDDrift(ref, backend="pytorch", p_val=ALPHA,
                                                           device="cpu")),
    }


def peer_worker(pool_path: str) -> None:
    """One JSON request per stdin line: {ref: [rows], cur: [rows], methods: [...]}."""
    import warnings

    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)  # alibi logs a warning per ClassifierDrift
    methods = _peer_methods()
    pool = np.load(pool_path)["pool"]
    from importlib.metadata import version

    versions = {name: version(name) for name in ("evidently", "alibi-detect", "torch")}
    print(json.dumps({"ready": versions}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        ref, cur = pool[request["ref"]], pool[request["cur"]]
        answer: dict[str, Any] = {}
        for name in request["methods"]:
            start = time.perf_counter()
            try:
                detected, score = methods[name](ref, cur)
            except Exception as exc:  # a peer's failure is reported, not fatal
                answer[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            answer[name] = {"detected": detected, "score": score,
                            "time_s": time.perf_counter() - start}
        print(json.dumps(answer), flush=True)


class Peers:
    """The worker process; its stderr goes to a log file that is shown if it dies."""

    def __init__(self, python: str, pool: np.ndarray) -> None:
        self._dir = tempfile.TemporaryDirectory()
        path = Path(self._dir.name) / "pool.npz"
        np.savez(path, pool=pool)
        self.log = Path(self._dir.name) / "worker.log"
        with self.log.open("w") as log:
            self._proc = subprocess.Popen(
                [python, __file__, "--peer-worker", str(path)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, text=True, cwd=str(ROOT))
        self.versions: dict[str, str] = self._read()["ready"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"peer worker exited; its log ends:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, ref: np.ndarray, cur: np.ndarray, methods: Sequence[str]) -> dict[str, Any]:
        assert self._proc.stdin is not None
        request = {"ref": ref.tolist(), "cur": cur.tolist(), "methods": list(methods)}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._dir.cleanup()


def start_peers(python: str, pool: np.ndarray) -> Peers | None:
    if not Path(python).exists():
        print(f"\npeers: {python} not found; install them as the docstring says")
        return None
    try:
        return Peers(python, pool)
    except RuntimeError as exc:
        print(f"\npeers: {python} could not start Evidently and Alibi Detect: {exc}")
        return None


# --- data ---------------------------------------------------------------------------------


def load_pool() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All vectors in one array, and the rows of each corpus and corpus/label in it."""
    os.environ.setdefault("DRIFTWATCH_EMBEDDING_CACHE", "/tmp/driftwatch-embeddings")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.detectors.conftest import arena_corpus, corpus, read_rows

    clinc_rows = read_rows("clinc150")
    in_scope = [r for r in clinc_rows if not r["is_oos"]]
    parts = [
        ("banking", corpus(read_rows("banking77"), "group")),
        ("clinc", corpus(in_scope[:2000] + [r for r in clinc_rows if r["is_oos"]][:300],
                         "domain")),
        # the other 1,000 in-scope queries: 300 of each domain in all, for held-out domains
        ("clinc_rest", corpus(in_scope[2000:], "domain")),
        ("jailbreak", corpus(read_rows("jailbreak"), "label")),
        ("arena", arena_corpus(300)),
    ]
    groups: dict[str, np.ndarray] = {}
    offset = 0
    for name, part in parts:
        labels = np.array(part.labels)
        groups[name] = offset + np.arange(len(part))
        for label in sorted(set(part.labels)):
            groups[f"{name}/{label}"] = offset + np.flatnonzero(labels == label)
        offset += len(part)
    for key in [k for k in groups if k.startswith("clinc_rest/")]:
        domain = key.removeprefix("clinc_rest/")
        groups[f"clinc_in_scope/{domain}"] = np.concatenate([groups[f"clinc/{domain}"],
                                                             groups[key]])
    groups["clinc_in_scope"] = np.concatenate(
        [np.setdiff1d(groups["clinc"], groups["clinc/oos"]), groups["clinc_rest"]])
    return np.vstack([p.vectors for _, p in parts]), groups


# --- timing -------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timing_windows(groups: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """2,000 vs 2,000 banking77 + CLINC150 queries: the same mix, and with 10 % jailbreaks."""
    rng = np.random.default_rng(0)
    mixed = rng.permutation(np.concatenate([groups["banking"], groups["clinc"]]))
    jailbreaks = rng.choice(groups["jailbreak"], 200, replace=False)
    return {"same mix": (mixed[:2000], mixed[2000:4000]),
            "10 % jailbreaks": (mixed[:2000], np.concatenate([mixed[4000:5800], jailbreaks]))}


def bench_timing(pool: np.ndarray, groups: dict[str, np.ndarray], peers: Peers | None,
                 repeats: int) -> None:
    from detectors import drift

    settings = drift.DriftSettings(alpha=ALPHA)
    windows = timing_windows(groups)
    ref, cur = (pool[rows] for rows in windows["same mix"])
    x, y = drift._rows(ref, "reference"), drift._rows(cur, "current")
    pooled = np.vstack([x, y])
    gram = pooled @ pooled.T
    rng = np.random.default_rng(0)
    labels = drift._permuted_labels(len(x), len(pooled), settings.permutations, rng)
    parts: list[tuple[str, Callable[[], object]]] = [
        ("gram matrix (shared)", lambda: pooled @ pooled.T),
        ("permuted labels, P = 1,000 (shared)", lambda: drift._permuted_labels(
            len(x), len(pooled), settings.permutations, rng)),
        ("MMD² permutation test, P = 1,000", lambda: drift._mmd_test(gram, len(x), labels, rng)),
        ("novelty rate (5-NN, conformal)",
         lambda: drift._novelty_test(gram, len(x), settings, rng)),
        ("neighbourhood scan (top directions out, 40-NN runs, P = 1,000)",
         lambda: drift._scan_test(drift._scan_rows(pooled), labels, settings.scan_top, rng)),
        ("classifier AUC (5-fold ridge)",
         lambda: drift._classifier_auc(pooled, len(x), settings.folds, rng)),
    ]
    names = list(windows)
    threads = ", ".join(f"{v}={os.environ.get(v, 'unset')}"
                        for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"))
    print(f"\n## Wall time, n = 2,000 vs 2,000, d = {pool.shape[1]}, one process after the "
          f"other on a shared CPU ({os.cpu_count()} cores, {threads}; load average "
          f"{os.getloadavg()[0]:.1f} at the start)\n")
    print("| method | seconds | " + " | ".join(f"decision: {n}" for n in names) + " |")
    print("|---|---:|" + "---|" * len(names))
    for name, fn in parts:
        print(f"| driftwatch: {name} | {statistics.median(timed(fn, repeats)):.2f} |"
              + " |" * len(names))

    def evaluate(window: str) -> object:
        reference, current = (pool[rows] for rows in windows[window])
        return drift.decide_all([drift.evaluate(reference, current, settings)], settings)[0]

    decisions = [evaluate(n) for n in names]
    total = timed(lambda: evaluate("same mix"), repeats)
    print(f"| **driftwatch evaluate() + decide, all of the above** (median of {repeats}; best "
          f"{min(total):.2f}) | **{statistics.median(total):.2f}** | "
          + " | ".join(str(d) for d in decisions) + " |")
    if peers is None:
        print("| peers | not installed (see the docstring) |" + " |" * len(names))
        return
    print("| peers: " + ", ".join(f"{k} {v}" for k, v in peers.versions.items()) + " | |"
          + " |" * len(names))
    for name in PEERS:
        answers = [peers.run(*windows[n], [name])[name] for n in names]
        if "error" in answers[0]:
            print(f"| {name} | failed: {answers[0]['error'][:80]} |" + " |" * len(names))
            continue
        print(f"| {name} | {answers[0]['time_s']:.2f} | "
              + " | ".join(str(a.get("detected", a.get("error"))) for a in answers) + " |")
    print(f"\n(load average {os.getloadavg()[0]:.1f} at the end; peers timed once, on the "
          "same-mix windows; Alibi's MMD and LSDD at their default 100 permutations)")


# --- power --------------------------------------------------------------------------------

Windows = tuple[np.ndarray, np.ndarray]
Scenario = Callable[[float, np.random.Generator], Windows]


def mixture(base: np.ndarray, extra: np.ndarray, n: int = 1000) -> Scenario:
    """Reference: n rows of `base`; current: n other rows, a fraction f of them `extra`."""
    def draw(f: float, rng: np.random.Generator) -> Windows:
        order = rng.permutation(base)
        k = round(f * n)
        cur = np.concatenate([order[n: 2 * n - k], rng.choice(extra, k, replace=False)])
        return order[:n], cur
    return draw


def held_out_domain(pool_rows: np.ndarray, domains: Sequence[np.ndarray],
                    n: int = 1000) -> Scenario:
    """One domain drawn at random per run is absent from the reference and a fraction f of
    the current window; the rest of both windows are the other domains."""
    def draw(f: float, rng: np.random.Generator) -> Windows:
        new = domains[int(rng.integers(len(domains)))]
        return mixture(np.setdiff1d(pool_rows, new), new, n)(f, rng)
    return draw


def model_swap(gpt4: np.ndarray, gpt35: np.ndarray) -> Scenario:
    """gpt-4 answers to half the prompts vs answers to the other half, a fraction f of
    them by gpt-3.5 (two-sample: no prompt is in both windows)."""
    def draw(f: float, rng: np.random.Generator) -> Windows:
        prompts = rng.permutation(len(gpt4))
        half = len(prompts) // 2
        a, b = prompts[:half], prompts[half:]
        swapped = np.zeros(len(b), dtype=bool)
        swapped[rng.choice(len(b), round(f * len(b)), replace=False)] = True
        return gpt4[a], np.where(swapped, gpt35[b], gpt4[b])
    return draw


def ours(pool: np.ndarray, ref: np.ndarray, cur: np.ndarray, seed: int,
         pairs: Sequence[tuple[int, int]] | None = None) -> bool:
    from detectors.drift import DriftSettings, decide_all, evaluate

    settings = DriftSettings(alpha=ALPHA, seed=seed, min_samples=20)
    return bool(decide_all([evaluate(pool[ref], pool[cur], settings, pairs=pairs)],
                           settings)[0])


class PowerRow:
    """Detection rates by method and fraction for one scenario."""

    def __init__(self, name: str, methods: Sequence[str]) -> None:
        self.name = name
        self.rates: dict[str, dict[float, tuple[int, int]]] = {m: {} for m in methods}

    def record(self, method: str, f: float, hits: Sequence[bool]) -> None:
        if hits:
            self.rates[method][f] = (sum(hits), len(hits))

    def detected_below(self, method: str, f: float) -> bool:
        return any(k >= DETECTED * n for g, (k, n) in self.rates[method].items() if 0 < g < f)

    def rate_at(self, method: str, f: float) -> str:
        k, n = self.rates[method].get(f, (0, 0))
        return f"{k}/{n}" if n else "–"

    def cell(self, method: str) -> str:
        rates = self.rates[method]
        k0, n0 = rates.get(0.0, (0, 0))
        false_alarms = f"FA {k0}/{n0}"
        if n0 and k0 > _allowed_false_alarms(n0):
            return f"uncalibrated ({false_alarms})"
        hits = [f for f, (k, n) in sorted(rates.items()) if f > 0 and k >= DETECTED * n]
        tried = max((f for f in rates if f > 0), default=0.0)
        found = f"{hits[0]:.1%}" if hits else f"> {tried:.0%}"
        return f"{found} ({false_alarms})"


def _allowed_false_alarms(n: int) -> int:
    """Most alarms out of n no-change runs that a calibrated alpha explains (one-sided
    binomial tail at 1 %)."""
    from scipy import stats

    return int(stats.binom.ppf(0.99, n, ALPHA))


def power_row(name: str, scenario: Scenario, fractions: Sequence[float], pool: np.ndarray,
              peers: Peers | None, reps: dict[str, int], coarse: bool) -> PowerRow:
    """Detection rates by fraction; with `coarse`, the slow peers try SLOW_FRACTIONS only."""
    row = PowerRow(name, list(reps))
    for f in fractions:
        active = [m for m in reps if (f in (0, REPORTED) or not row.detected_below(m, f))
                  and not (coarse and m in SLOW_PEERS and f not in SLOW_FRACTIONS)]
        if not active:  # each detected below f; 5 % still runs, for its table
            continue
        hits: dict[str, list[bool]] = {m: [] for m in active}
        for rep in range(max(reps[m] for m in active)):
            ref, cur = scenario(f, np.random.default_rng([rep, round(f * 1000)]))
            if "driftwatch" in active and rep < reps["driftwatch"]:
                hits["driftwatch"].append(ours(pool, ref, cur, rep))
            wanted = [m for m in active if m != "driftwatch" and rep < reps[m]]
            if peers is not None and wanted:
                for m, out in peers.run(ref, cur, wanted).items():
                    if "detected" in out:
                        hits[m].append(out["detected"])
        for m, h in hits.items():
            row.record(m, f, h)
        print(f"  {name} f={f:.3f} " + " ".join(
            f"{m}={sum(h)}/{len(h)}" for m, h in hits.items()), file=sys.stderr, flush=True)
    return row


def bench_power(pool: np.ndarray, groups: dict[str, np.ndarray], peers: Peers | None,
                args: argparse.Namespace) -> None:
    banking_other = np.setdiff1d(groups["banking"], groups["banking/top_up"])
    in_scope = np.setdiff1d(groups["clinc"], groups["clinc/oos"])
    scenarios: list[tuple[str, Scenario, Sequence[float], bool]] = [
        ("banking77: new topic group (top_up, absent before)",
         mixture(banking_other, groups["banking/top_up"]), MIXTURE_FRACTIONS, True),
        ("banking77 + in-the-wild jailbreak prompts",
         mixture(groups["banking"], groups["jailbreak"]), MIXTURE_FRACTIONS, True),
        ("CLINC150: out-of-scope queries (0 before)",
         mixture(in_scope, groups["clinc/oos"]), MIXTURE_FRACTIONS, True),
        ("CLINC150: a held-out domain (15 intents, one of 10 drawn per run; 0 before)",
         held_out_domain(groups["clinc_in_scope"],
                         [v for k, v in sorted(groups.items())
                          if k.startswith("clinc_in_scope/")]),
         MIXTURE_FRACTIONS, True),
        ("arena-hard: gpt-4-0314 → gpt-3.5-turbo-0125 (150/side)",
         model_swap(groups["arena/gpt-4-0314"], groups["arena/gpt-3.5-turbo-0125"]),
         SWAP_FRACTIONS, False),
    ]
    reps = {"driftwatch": args.reps}
    if peers is not None:
        reps |= {m: args.peer_reps for m in FAST_PEERS}
        reps |= {m: args.slow_peer_reps for m in SLOW_PEERS if args.slow_peer_reps > 0}
    rows = [power_row(name, s, fr, pool, peers, reps, coarse)
            for name, s, fr, coarse in scenarios]
    methods = list(reps)
    print(f"\n## Detection power at alpha = {ALPHA}: smallest shifted fraction detected in "
          f">= {DETECTED:.0%} of runs (driftwatch {args.reps} runs, fast peers "
          f"{args.peer_reps}, Alibi MMD/LSDD {args.slow_peer_reps} on the grid "
          f"{', '.join(f'{f:.0%}' for f in SLOW_FRACTIONS[1:])}); FA = false alarms at 0 %\n")
    print("| method | " + " | ".join(r.name for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for m in methods:
        print(f"| {m} | " + " | ".join(r.cell(m) for r in rows) + " |")
    print(f"\n## Detection rate at {REPORTED:.0%} (runs that alarm; FA = false alarms at 0 %)\n")
    print("| method | " + " | ".join(r.name for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for m in methods:
        print(f"| {m} | " + " | ".join(f"{r.rate_at(m, REPORTED)} (FA {r.rate_at(m, 0.0)})"
                                        for r in rows) + " |")
    print("\ndriftwatch detection rate by fraction:\n")
    for r in rows:
        cells = ", ".join(f"{f:.1%}: {k}/{n}" for f, (k, n) in
                          sorted(r.rates["driftwatch"].items()))
        print(f"- {r.name}: {cells}")


def bench_paired(pool: np.ndarray, groups: dict[str, np.ndarray], peers: Peers | None,
                 reps: int, peer_reps: int) -> None:
    """Both models' answers to the same n prompts: ours with the pairs, everyone without."""
    gpt4, gpt35 = groups["arena/gpt-4-0314"], groups["arena/gpt-3.5-turbo-0125"]
    cheap = list(PEERS) if peers is not None else []
    print("\n## Model swap on the same prompts: gpt-4-0314 vs gpt-3.5-turbo-0125 answers to "
          f"the same n arena-hard prompts; runs that alarm (driftwatch {reps} runs, peers "
          f"{peer_reps})\n")
    print("| pairs n | driftwatch with pairs | driftwatch without | "
          + " | ".join(cheap) + " |")
    print("|---:|---:|---:|" + "---:|" * len(cheap))
    for n in (20, 30, 50, 100, 150, 300):
        with_pairs, without = 0, 0
        peer_hits: dict[str, list[bool]] = {m: [] for m in cheap}
        for rep in range(reps):
            rows = np.random.default_rng([rep, n]).choice(len(gpt4), n, replace=False)
            pairs = [(i, i) for i in range(n)]
            with_pairs += ours(pool, gpt4[rows], gpt35[rows], rep, pairs)
            without += ours(pool, gpt4[rows], gpt35[rows], rep)
            if peers is not None and rep < peer_reps:
                for m, out in peers.run(gpt4[rows], gpt35[rows], cheap).items():
                    if "detected" in out:
                        peer_hits[m].append(out["detected"])
        print(f"| {n} | {with_pairs}/{reps} | {without}/{reps} | "
              + " | ".join(f"{sum(h)}/{len(h)}" for h in peer_hits.values()) + " |")


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="driftwatch runs per cell")
    parser.add_argument("--peer-reps", type=int, default=10, help="runs per cell, fast peers")
    parser.add_argument("--slow-peer-reps", type=int, default=5,
                        help="runs per cell for Alibi MMD and LSDD (0: leave them out)")
    parser.add_argument("--timing-repeats", type=int, default=5)
    parser.add_argument("--peers", default="/tmp/peers-venv/bin/python")
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--no-power", action="store_true")
    parser.add_argument("--peer-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_worker:
        peer_worker(args.peer_worker)
        return
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    pool, groups = load_pool()
    peers = None if args.no_peers else start_peers(args.peers, pool)
    try:
        bench_timing(pool, groups, peers, args.timing_repeats)
        if not args.no_power:
            bench_power(pool, groups, peers, args)
            bench_paired(pool, groups, peers, args.reps, args.peer_reps)
    finally:
        if peers is not None:
            peers.close()
    print(f"\n(bench ran {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
