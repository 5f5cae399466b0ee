"""Shared statistics for the detectors: false-discovery control, proportions and ranks.

Pure functions of numbers; nothing here knows about windows, records or embeddings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def bh_adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given.

    q_i = min over j with rank(p_j) >= rank(p_i) of m * p_j / rank(p_j), capped at 1.
    """
    m = len(p_values)
    if m == 0:
        return []
    p = np.asarray(p_values, dtype=np.float64)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError(f"p-values must lie in [0, 1], got: {list(p_values)}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(monotone, 1.0)
    return [float(v) for v in q]


def benjamini_hochberg(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Which hypotheses BH rejects with the false-discovery rate held at `alpha`."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got: {alpha}")
    return [q <= alpha for q in bh_adjusted(p_values)]


def two_proportion_p_value(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    """Two-sided pooled z-test that two proportions are equal; 1.0 when nothing varies."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError(f"sample sizes must be positive, got: {n_a}, {n_b}")
    pooled = (hits_a + hits_b) / (n_a + n_b)
    variance = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    if variance <= 0:
        return 1.0
    z = (hits_a / n_a - hits_b / n_b) / math.sqrt(variance)
    return float(2 * stats.norm.sf(abs(z)))


def wilson_interval(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (sensible at 0 or n hits)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got: {n}")
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return low, high


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties count one half)."""
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes")
    ranks = stats.rankdata(scores)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def permutation_p_value(observed: float, permuted: np.ndarray) -> float:
    """(1 + #{permuted >= observed}) / (1 + P): exact-valid, never zero."""
    exceed = int(np.count_nonzero(permuted >= observed))
    return (1 + exceed) / (1 + permuted.size)


def subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted row indices: all n rows, or `cap` of them drawn uniformly without replacement."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))
