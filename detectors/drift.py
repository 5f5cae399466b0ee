"""Embedding drift between a reference window and a current window: the statistical core.

Arrays in, frozen dataclasses out; no store, network or clock. Rows are L2-normalised
embeddings. Two calibrated tests decide, two effect sizes gate and explain:

- MMD² with an RBF kernel whose bandwidth is the median squared distance between reference
  rows, tested by permutation; every permutation is evaluated at once as K·A, A being the
  N×(P+1) indicator matrix of "reference" labels (column 0 the observed one).
- Novelty rate: the share of current rows whose mean k-NN cosine distance to an index half
  of the reference exceeds the r-th largest such distance in the other (calibration) half.
  Under no change, calibration and current rows are exchangeable given the index half, so
  the count is negative-hypergeometric: an exact conformal p-value, no permutations needed.
- Neighbourhood scan: for each current row, how many of its nearest pooled neighbours
  are current before the first reference row; the statistic sums the `scan_top` longest
  such runs. A new topic absent from the reference, even a few percent of the window
  spread over several intents, leaves a handful of current rows whose neighbourhoods hold
  no reference row at all; under no change such runs are short. Tested by the same label
  permutations as the MMD (the neighbour lists are label-blind, so each permutation is a
  lookup), hence exact whatever the data's near-duplicates. Neighbours are found after
  taking out what every text shares (the pooled mean and top principal directions).
- Out-of-fold ROC AUC of a ridge (least-squares) linear classifier, reference vs current,
  and the cosine distance between the two centroids.

`decide_all` applies Benjamini-Hochberg across every test of a run and the effect gates;
`hysteresis` turns a run of decisions into a page; `self_check` measures the false-alarm
rate on reference-vs-reference splits.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from detectors._stats import benjamini_hochberg, permutation_p_value, roc_auc, subsample

# float32 kernel sums carry ~1e-7 relative error; a permuted MMD² this close to the
# observed one counts as a tie (and ties count against drift)
_TIE_TOLERANCE = 1e-6
_BANDWIDTH_ROWS = 1000
# a third of the reference indexes the k-NN search, two thirds calibrate its threshold: a
# larger calibration set pins the threshold down, which measured more powerful on real
# traffic (3 % jailbreak prompts, 10 % out-of-scope queries) than an even split
_INDEX_SHARE = 1 / 3
# the scan follows each row's 40 nearest neighbours: runs of new-topic rows at 5 % of
# 1,000 calls reached 14-26 at their 90th percentile, and 80 measured no more powerful
_SCAN_NEIGHBOURS = 40
# the scan compares rows with what every text shares taken out: the pooled mean and the
# top principal directions ("all but the top", Mu & Viswanath 2018). Sentence embeddings
# spend much of their length on a few common directions, which crowd every neighbourhood
# with rows of other topics; without them, a new topic's rows are each other's neighbours
# more often (banking77's top_up group at 5 %: see docs/detectors.md, "Power at 5%")
_SCAN_COMPONENTS = 5
# rows of unit length closer than this in every coordinate are the same text embedded twice
_SAME_ROW = 1e-6


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftSettings:
    """How one drift evaluation runs and when its result counts as drift."""

    alpha: float = 0.01  # false-discovery rate across all tests of one run
    permutations: int = 1000
    min_samples: int = 50  # per side; below it the answer is "insufficient data"
    max_samples: int = 2000  # per side; larger windows are subsampled uniformly
    knn_k: int = 5
    novelty_quantile: float = 0.98
    min_auc: float = 0.55  # effect gate for the MMD test
    min_novel_excess: float = 0.02  # effect gate for the novelty test (share above expected)
    min_paired_effect: float = 0.05  # effect gate for the paired test (signal-to-noise)
    scan_top: int = 5  # the scan sums this many longest all-current neighbourhood runs
    min_scan_effect: float = 0.05  # effect gate for the scan (excess run share, see below)
    folds: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        _check(0 < self.alpha < 1, "alpha", "must lie in (0, 1)", self.alpha)
        _check(self.permutations >= 1, "permutations", "must be at least 1", self.permutations)
        _check(self.min_samples >= 10, "min_samples", "must be at least 10", self.min_samples)
        _check(self.max_samples >= self.min_samples, "max_samples",
               "must be at least min_samples", self.max_samples)
        _check(self.knn_k >= 1, "knn_k", "must be at least 1", self.knn_k)
        _check(0.5 <= self.novelty_quantile < 1, "novelty_quantile", "must lie in [0.5, 1)",
               self.novelty_quantile)
        _check(0.5 <= self.min_auc <= 1, "min_auc", "must lie in [0.5, 1]", self.min_auc)
        _check(0 <= self.min_novel_excess <= 1, "min_novel_excess", "must lie in [0, 1]",
               self.min_novel_excess)
        _check(0 <= self.min_paired_effect <= 1, "min_paired_effect", "must lie in [0, 1]",
               self.min_paired_effect)
        _check(self.folds >= 2, "folds", "must be at least 2", self.folds)
        _check(self.scan_top >= 1, "scan_top", "must be at least 1", self.scan_top)
        _check(0 <= self.min_scan_effect <= 1, "min_scan_effect", "must lie in [0, 1]",
               self.min_scan_effect)


def _check(ok: bool, name: str, rule: str, value: object) -> None:
    if not ok:
        raise ValueError(f"{name}: {rule}, got: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftTest:
    """One test: its statistic, p-value and the effect size its gate reads."""

    name: str  # "mmd" | "novelty" | "scan" | "paired"
    # MMD² | novel share of the current rows | summed longest runs | squared mean pair diff.
    statistic: float
    p_value: float
    # classifier AUC | novel share above the expected | excess run share | pair signal-to-noise
    effect: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftEvaluation:
    """Everything one reference-vs-current comparison found.

    The tests and effect sizes are None when either side had fewer than `min_samples`
    rows: that is "insufficient data", never "no drift". Counts are the rows tested, after
    any subsampling; `novel_indices` index the `current` array as passed in, most novel first.
    """

    n_reference: int
    n_current: int
    mmd: DriftTest | None = None
    novelty: DriftTest | None = None
    scan: DriftTest | None = None
    paired: DriftTest | None = None  # only when pairs were given, and enough of them
    classifier_auc: float | None = None
    centroid_distance: float | None = None
    bandwidth: float | None = None
    novel_indices: tuple[int, ...] = ()
    reason: str | None = None  # why the tests could not or need not run, when they did not

    @property
    def sufficient(self) -> bool:
        return self.mmd is not None

    @property
    def tests(self) -> tuple[DriftTest, ...]:
        return tuple(t for t in (self.mmd, self.novelty, self.scan, self.paired)
                     if t is not None)


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfCheck:
    """Reference-half vs reference-half runs: how often the detector would have paged."""

    splits: int
    false_alarm_rate: float | None  # None when the halves are below min_samples
    mmd_p_values: tuple[float, ...]
    novelty_p_values: tuple[float, ...]


def evaluate(reference: np.ndarray, current: np.ndarray,
             settings: DriftSettings = DriftSettings(), *,
             pairs: Sequence[tuple[int, int]] | np.ndarray | None = None) -> DriftEvaluation:
    """Compare two windows of embeddings (rows) with every test; deterministic per seed.

    `pairs` optionally lists (reference row, current row) answers to the same prompt. The
    two-sample tests are blind to a change that shows only within such pairs (a model swap
    on repeated prompts makes each answer closer to its twin than to anything else), so
    the paired sign-flip test runs on them as well.
    """
    ref, cur = _rows(reference, "reference"), _rows(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference and current differ in dimension: {ref.shape[1]} vs "
                         f"{cur.shape[1]}")
    if min(len(ref), len(cur)) < settings.min_samples:
        return DriftEvaluation(n_reference=len(ref), n_current=len(cur))
    rng = np.random.default_rng(settings.seed)
    ref_rows = subsample(len(ref), settings.max_samples, rng)
    cur_rows = subsample(len(cur), settings.max_samples, rng)
    x, y = ref[ref_rows], cur[cur_rows]
    pooled = np.vstack([x, y])
    if np.abs(pooled - pooled[0]).max() <= _SAME_ROW:
        return _one_text(len(x), len(y))
    gram = pooled @ pooled.T
    novelty, novel = _novelty_test(gram, len(x), settings, rng)
    labels = _permuted_labels(len(x), len(pooled), settings.permutations, rng)
    mmd2, p_mmd, bandwidth = _mmd_test(gram, len(x), labels, rng)
    scan = _scan_test(_scan_rows(pooled), labels, settings.scan_top, rng)
    auc = _classifier_auc(pooled, len(x), settings.folds, rng)
    paired = None if pairs is None else _paired_test(ref, cur, pairs, settings, rng)
    return DriftEvaluation(
        n_reference=len(x),
        n_current=len(y),
        mmd=DriftTest(name="mmd", statistic=mmd2, p_value=p_mmd, effect=auc),
        novelty=novelty,
        scan=scan,
        paired=paired,
        classifier_auc=auc,
        centroid_distance=_centroid_distance(x, y),
        bandwidth=bandwidth,
        novel_indices=tuple(int(i) for i in cur_rows[novel]),
    )


def _one_text(n_ref: int, n_cur: int) -> DriftEvaluation:
    """Both windows are one and the same text repeated: nothing changed, and no test has a
    distribution to work on (every distance is zero), so each is reported at p = 1."""
    def nothing(name: str, effect: float = 0.0) -> DriftTest:
        return DriftTest(name=name, statistic=0.0, p_value=1.0, effect=effect)

    return DriftEvaluation(
        n_reference=n_ref, n_current=n_cur, mmd=nothing("mmd", 0.5), novelty=nothing("novelty"),
        scan=nothing("scan"), classifier_auc=0.5, centroid_distance=0.0,
        reason="every text in both windows is the same")


def _rows(embeddings: np.ndarray, name: str) -> np.ndarray:
    """float32 rows, L2-normalised again so that the geometry is exactly cosine."""
    rows = np.asarray(embeddings, dtype=np.float32)
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError(f"{name}: must be a 2-D array of embeddings, got shape {rows.shape}")
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if not np.isfinite(norms).all() or (norms == 0).any():
        raise ValueError(f"{name}: embeddings must be finite and non-zero")
    normalised: np.ndarray = rows / norms
    return normalised


def _sq_distances(gram: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    squared: np.ndarray = np.maximum(2 - 2 * gram[np.ix_(rows, cols)], 0)
    return squared


def _permuted_labels(n_ref: int, n: int, permutations: int,
                     rng: np.random.Generator) -> np.ndarray:
    """(permutations + 1) × n, True for "reference": row 0 the observed labelling (the first
    n_ref rows), then uniform permutations of it. Every permutation test of a run uses them."""
    labels = np.zeros((permutations + 1, n), dtype=bool)
    labels[:, :n_ref] = True
    rng.permuted(labels[1:], axis=1, out=labels[1:])
    return labels


def _mmd_test(gram: np.ndarray, n_ref: int, labels: np.ndarray,
              rng: np.random.Generator) -> tuple[float, float, float]:
    """Unbiased MMD², its permutation p-value and the bandwidth (median squared distance)."""
    fit = rng.choice(n_ref, size=min(n_ref, _BANDWIDTH_ROWS), replace=False)
    ref_d2 = _sq_distances(gram, fit, fit)
    bandwidth = float(np.median(ref_d2[~np.eye(len(fit), dtype=bool)]))
    if bandwidth <= 0:  # a reference of identical rows: any positive scale will do
        bandwidth = 1.0
    # unit rows: k(x, y) = exp(-|x - y|² / bw) = exp((2 x·y - 2) / bw), at most 1, so a
    # small bandwidth (near-duplicate texts) underflows to 0 instead of overflowing
    scale = np.float32(2 / bandwidth)
    kernel = gram * scale
    kernel -= scale
    np.exp(kernel, out=kernel)
    indicator = np.ascontiguousarray(labels.T, dtype=np.float32)
    mmd2 = _mmd2_all(kernel, indicator, n_ref)
    p_value = permutation_p_value(float(mmd2[0]) - _TIE_TOLERANCE, mmd2[1:])
    return float(mmd2[0]), p_value, bandwidth


def _mmd2_all(kernel: np.ndarray, indicator: np.ndarray, n_ref: int) -> np.ndarray:
    """Unbiased MMD² (diagonal excluded) for every labelling (column) of `indicator`, all
    from one matrix product."""
    n_cur = len(kernel) - n_ref
    diagonal = np.diag(kernel).astype(np.float64)
    row_sums = kernel.sum(axis=1, dtype=np.float64) - diagonal
    k_a = kernel @ indicator
    aka = np.einsum("ij,ij->j", indicator, k_a, dtype=np.float64) - indicator.T @ diagonal
    ak1 = indicator.T @ row_sums
    akb = ak1 - aka
    bkb = row_sums.sum() - 2 * ak1 + aka
    mmd2: np.ndarray = (aka / (n_ref * (n_ref - 1)) + bkb / (n_cur * (n_cur - 1))
                        - 2 * akb / (n_ref * n_cur))
    return mmd2


def _scan_rows(pooled: np.ndarray) -> np.ndarray:
    """The rows as the scan compares them: centred on the pooled mean, the top
    `_SCAN_COMPONENTS` principal directions removed, unit length again.

    Both windows are pooled and every row is treated alike, so the transform is blind to
    the labels and the permutation null still holds. Where those directions hold most of
    the variance (a handful of distinct texts), they are what tells the texts apart, and
    the rows are only centred.
    """
    centred = pooled - pooled.mean(axis=0, dtype=np.float64).astype(np.float32)
    values, vectors = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
    k = min(_SCAN_COMPONENTS, len(values))
    if values[-k:].sum() < 0.5 * values.sum():
        top = vectors[:, -k:].astype(np.float32)
        centred -= (centred @ top) @ top.T
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    rows: np.ndarray = centred / np.maximum(norms, np.float32(1e-12))
    return rows


def _scan_test(rows: np.ndarray, labels: np.ndarray, top: int,
               rng: np.random.Generator) -> DriftTest:
    """Sum of the `top` longest runs of current rows among current rows' nearest pooled
    neighbours (nearest first, up to _SCAN_NEIGHBOURS; `rows` as `_scan_rows` gives them),
    its permutation p-value over the rows of `labels`, and its effect: the observed sum
    less the permutations' mean, as a share of the longest possible sum.

    The sum of the `top` longest runs is the sum over depths j of min(top, rows whose run
    reaches j), so each depth needs only a count per labelling: the labellings are packed
    as bits, one byte holding eight, and rows whose runs all ended are dropped.
    """
    n, labellings = len(rows), len(labels)
    depth = min(_SCAN_NEIGHBOURS, n - 1)
    top = min(top, n)
    nearest = _nearest(rows, depth, rng)
    current = np.packbits(~labels.T, axis=1)  # n × bytes: bit p is labelling p
    alive = current  # current rows whose neighbours so far were all current
    running = np.arange(n)
    sums = np.zeros(labellings, dtype=np.int64)
    for j in range(depth):
        alive = alive & current[nearest[running, j]]
        still = np.flatnonzero(alive.any(axis=1))
        if len(still) == 0:
            break
        alive, running = alive[still], running[still]
        reached = np.unpackbits(alive, axis=1, count=labellings).sum(axis=0, dtype=np.int64)
        sums += np.minimum(reached, top)
    p_value = permutation_p_value(float(sums[0]) - 0.5, sums[1:].astype(np.float64))
    effect = (float(sums[0]) - float(sums[1:].mean())) / (top * depth) if labellings > 1 else 0.0
    return DriftTest(name="scan", statistic=float(sums[0]), p_value=p_value, effect=effect)


def _nearest(rows: np.ndarray, depth: int, rng: np.random.Generator) -> np.ndarray:
    """Each row's `depth` most similar other rows (cosine), most similar first.

    Ties (the same text in several rows) are broken by a random order of the rows drawn
    from `rng`, never by position: the reference rows come first, so a positional order
    would side with one label and the permutation null would no longer hold. Similarities
    are computed a block of rows at a time, so no N×N matrix is kept.
    """
    n = len(rows)
    order = rng.permutation(n)  # row order[i] is searched as position i
    shuffled = rows[order]
    nearest = np.empty((n, depth), dtype=np.intp)
    for start in range(0, n, 256):
        block = shuffled[start:start + 256] @ shuffled.T
        size = len(block)
        block[np.arange(size), start + np.arange(size)] = -np.inf
        found = np.argpartition(block, n - depth, axis=1)[:, n - depth:]
        near = np.take_along_axis(block, found, axis=1)
        ranked = np.lexsort((found, -near), axis=1)  # most similar, then random order
        nearest[order[start:start + size]] = order[np.take_along_axis(found, ranked, axis=1)]
    return nearest


def _novelty_test(gram: np.ndarray, n_ref: int, settings: DriftSettings,
                  rng: np.random.Generator) -> tuple[DriftTest, np.ndarray]:
    """Novel share of the current rows, its exact conformal p-value, and which rows (by
    position in the current window, most novel first)."""
    shuffled = rng.permutation(n_ref)
    n_index = round(n_ref * _INDEX_SHARE)
    index, calibration = shuffled[:n_index], shuffled[n_index:]
    queries = np.concatenate([calibration, np.arange(n_ref, len(gram))])
    k = min(settings.knn_k, len(index))
    cosine_distance = _sq_distances(gram, queries, index) / 2
    scores = np.partition(cosine_distance, k - 1, axis=1)[:, :k].mean(axis=1)
    n_cal, n_cur = len(calibration), len(gram) - n_ref
    cal_scores, cur_scores = scores[:n_cal], scores[n_cal:]
    r = max(1, round((1 - settings.novelty_quantile) * n_cal))
    threshold = np.sort(cal_scores)[-r]
    novel = np.flatnonzero(cur_scores > threshold)
    novel = novel[np.argsort(-cur_scores[novel], kind="stable")]
    # rows drawn one by one from the top of the pooled ranking: the number of current
    # rows met before the r-th calibration row is negative-hypergeometric under no change
    null = stats.nhypergeom(n_cal + n_cur, n_cur, r)
    p_value = float(min(1.0, null.sf(len(novel) - 1)))
    share = len(novel) / n_cur
    test = DriftTest(name="novelty", statistic=share, p_value=p_value,
                     effect=share - r / (n_cal + 1))
    return test, novel


def _classifier_auc(pooled: np.ndarray, n_ref: int, folds: int,
                    rng: np.random.Generator) -> float:
    """Out-of-fold ROC AUC of ridge regression on the labels (current = 1), stratified folds.

    Each fold's moments are computed once; a training set's are the totals minus its fold's.
    """
    is_current = (np.arange(len(pooled)) >= n_ref).astype(np.float64)
    fold = np.concatenate([rng.permutation(n_ref), rng.permutation(len(pooled) - n_ref)])
    fold %= folds
    x = pooled
    parts = [_Moments.of(x[fold == f], is_current[fold == f]) for f in range(folds)]
    total = functools.reduce(_Moments.plus, parts)
    scores = np.empty(len(pooled))
    for f, part in enumerate(parts):
        weights, centre = total.minus(part).ridge()
        scores[fold == f] = (x[fold == f] - centre) @ weights
    return roc_auc(scores, is_current.astype(bool))


@dataclass(frozen=True, slots=True)
class _Moments:
    """Sufficient statistics of a least-squares fit: counts, sums and cross-products."""

    n: int
    sum_x: np.ndarray
    sum_y: float
    xx: np.ndarray
    xy: np.ndarray

    @staticmethod
    def of(x: np.ndarray, y: np.ndarray) -> _Moments:
        xx = (x.T @ x).astype(np.float64)  # float32 products: ample for a ridge fit
        return _Moments(len(x), x.sum(axis=0, dtype=np.float64), float(y.sum()), xx,
                        x.T.astype(np.float64) @ y)

    def plus(self, other: _Moments) -> _Moments:
        return _Moments(self.n + other.n, self.sum_x + other.sum_x, self.sum_y + other.sum_y,
                        self.xx + other.xx, self.xy + other.xy)

    def minus(self, other: _Moments) -> _Moments:
        return _Moments(self.n - other.n, self.sum_x - other.sum_x, self.sum_y - other.sum_y,
                        self.xx - other.xx, self.xy - other.xy)

    def ridge(self) -> tuple[np.ndarray, np.ndarray]:
        """Weights and centre of centred ridge regression; the penalty is 0.3 times the
        mean eigenvalue of the scatter matrix, so it scales with the data."""
        centre = self.sum_x / self.n
        scatter = self.xx - self.n * np.outer(centre, centre)
        cross = self.xy - centre * self.sum_y
        # the floor keeps windows of one repeated text (a zero scatter) solvable
        penalty = max(0.3 * np.trace(scatter) / len(scatter), 1e-9)
        scatter[np.diag_indices_from(scatter)] += penalty
        weights: np.ndarray = np.linalg.solve(scatter, cross)
        return weights, centre


def _paired_test(reference: np.ndarray, current: np.ndarray,
                 pairs: Sequence[tuple[int, int]] | np.ndarray, settings: DriftSettings,
                 rng: np.random.Generator) -> DriftTest | None:
    """Sign-flip permutation test that paired differences (current - reference) average 0.

    Under no change the two answers of a pair are exchangeable, so each difference is as
    likely negated: every sign pattern is one matrix product S·D. The statistic is the
    unbiased squared norm of the mean difference; the effect its square root over the
    root-mean-square difference (0 when answers differ only by noise).
    """
    rows = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if ((rows < 0).any() or (rows[:, 0] >= len(reference)).any()
            or (rows[:, 1] >= len(current)).any()):
        raise ValueError("pairs: every (reference row, current row) must index its window")
    if len(rows) < settings.min_samples:
        return None
    rows = rows[subsample(len(rows), settings.max_samples, rng)]
    diffs = current[rows[:, 1]].astype(np.float64) - reference[rows[:, 0]]
    signs = rng.choice(np.array([-1.0, 1.0]), size=(settings.permutations + 1, len(rows)))
    signs[0] = 1.0
    totals = np.square(signs @ diffs).sum(axis=1)
    p_value = permutation_p_value(float(totals[0]) * (1 - 1e-9), totals[1:])
    n, squares = len(rows), float(np.square(diffs).sum())
    signal = (float(totals[0]) - squares) / (n * (n - 1))
    effect = float(np.sqrt(max(signal, 0.0) * n / squares)) if squares > 0 else 0.0
    return DriftTest(name="paired", statistic=signal, p_value=p_value, effect=effect)


def _centroid_distance(x: np.ndarray, y: np.ndarray) -> float:
    a, b = x.mean(axis=0, dtype=np.float64), y.mean(axis=0, dtype=np.float64)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return 1.0 - float(a @ b) / norm if norm > 0 else 0.0


def decide(evaluation: DriftEvaluation, rejected: Mapping[str, bool],
           settings: DriftSettings = DriftSettings()) -> bool | None:
    """Drift when a test the run's FDR control rejected also clears its effect gate.

    `rejected` maps test names to the BH decision; None means insufficient data.
    """
    if not evaluation.sufficient:
        return None
    gates = {"mmd": settings.min_auc, "novelty": settings.min_novel_excess,
             "scan": settings.min_scan_effect, "paired": settings.min_paired_effect}
    return any(rejected.get(t.name, False) and t.effect >= gates[t.name]
               for t in evaluation.tests)


def decide_all(evaluations: Sequence[DriftEvaluation],
               settings: DriftSettings = DriftSettings()) -> tuple[bool | None, ...]:
    """Decide every evaluation of one run (all segments and directions), with
    Benjamini-Hochberg at `settings.alpha` across all of their tests together."""
    keyed = [(i, t) for i, e in enumerate(evaluations) for t in e.tests]
    rejections = benjamini_hochberg([t.p_value for _, t in keyed], settings.alpha)
    per_evaluation: list[dict[str, bool]] = [{} for _ in evaluations]
    for (i, test), rejected in zip(keyed, rejections, strict=True):
        per_evaluation[i][test.name] = rejected
    return tuple(decide(e, r, settings) for e, r in zip(evaluations, per_evaluation,
                                                        strict=True))


def hysteresis(recent: Sequence[bool | None], k: int, m: int) -> bool:
    """Page when at least k of the last m decisions were drift (None never counts)."""
    if not 1 <= k <= m:
        raise ValueError(f"hysteresis needs 1 <= k <= m, got: k={k}, m={m}")
    return sum(1 for d in list(recent)[-m:] if d is True) >= k


def self_check(reference: np.ndarray, settings: DriftSettings = DriftSettings(),
               splits: int = 20) -> SelfCheck:
    """Run the detector on random halves of the reference against each other.

    Each split is decided as a run of its own (BH over its two tests), so the false-alarm
    rate is what a segment with no change would see; it should stay near or below alpha.
    """
    ref = _rows(reference, "reference")
    rng = np.random.default_rng(settings.seed)
    decisions: list[bool | None] = []
    mmd_p: list[float] = []
    novelty_p: list[float] = []
    for split in range(splits):
        order = rng.permutation(len(ref))
        half = len(ref) // 2
        run = dataclasses.replace(settings, seed=settings.seed + 1 + split)
        result = evaluate(ref[order[:half]], ref[order[half:]], run)
        decisions.append(decide_all([result], run)[0])
        if result.mmd is not None and result.novelty is not None:
            mmd_p.append(result.mmd.p_value)
            novelty_p.append(result.novelty.p_value)
    decided = [d for d in decisions if d is not None]
    rate = sum(decided) / len(decided) if decided else None
    return SelfCheck(splits=splits, false_alarm_rate=rate, mmd_p_values=tuple(mmd_p),
                     novelty_p_values=tuple(novelty_p))
