"""The evaluation detector's statistics: false alarms under no change, and the power to
find a drop, at the default alpha, with several evaluation names per segment.

    .venv/bin/python bench/evaluation.py                  # 1,000 trials per row
    .venv/bin/python bench/evaluation.py --trials 500 --names 5

Each trial draws a reference and a current window of `--n` evaluations per name (a pass
mark with the row's pass rate, and a score from Beta(5, 2) for a pass, Beta(2, 5) for a
fail), runs `detectors.evaluation.compare` per name and Holm across the `--names` names,
and counts a segment as alarmed when any name's corrected p-value is below alpha and its
pass rate fell at least `--min-drop` (the job's rule). Under no change the share of
alarmed segments is the false alarm rate; with one name dropping, the power.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.evaluation import Scores, compare, holm  # noqa: E402


def window(rng: np.random.Generator, n: int, pass_rate: float) -> Scores:
    passed = rng.random(n) < pass_rate
    scores = np.where(passed, rng.beta(5, 2, n), rng.beta(2, 5, n))
    return Scores(scores=scores, passed=passed.astype(np.float64))


def alarm_rate(rng: np.random.Generator, *, trials: int, n: int, names: int, base: float,
               drop: float, alpha: float, min_drop: float) -> float:
    alarmed = 0
    for _ in range(trials):
        drops = [compare(window(rng, n, base - (drop if i == 0 else 0.0)),
                         window(rng, n, base), min_samples=30) for i in range(names)]
        adjusted = holm([d.p_value for d in drops])
        alarmed += any(p is not None and p < alpha
                       and (d.pass_rate_drop is None or d.pass_rate_drop >= min_drop)
                       for p, d in zip(adjusted, drops, strict=True))
    return alarmed / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--n", type=int, default=200, help="evaluations per name and window")
    parser.add_argument("--names", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--min-drop", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.trials} trials, {args.n} evaluations per name and window, {args.names} "
          f"names, alpha {args.alpha:g}, min_drop {args.min_drop:g}")
    print(f"{'pass rate':>10} {'drop':>6} {'alarmed':>8}")
    for base, drop in ((0.9, 0.0), (0.7, 0.0), (0.9, 0.05), (0.9, 0.10), (0.9, 0.20),
                       (0.7, 0.10)):
        rate = alarm_rate(rng, trials=args.trials, n=args.n, names=args.names, base=base,
                          drop=drop, alpha=args.alpha, min_drop=args.min_drop)
        print(f"{base:>10.0%} {drop:>6.0%} {rate:>8.2%}")


if __name__ == "__main__":
    main()
