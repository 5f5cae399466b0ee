"""What drifted: clusters of the pooled embeddings whose share moved between two windows.

Spherical k-means (cosine, k-means++ seeding, fixed seed) groups reference and current rows
together, and a cluster whose halves differ in window mix is split (a new topic that shares
a cluster with an old one gets its own). Each cluster reports its share of either window, a
two-proportion test (with Benjamini-Hochberg q-values across the clusters), and one
description: the examples and c-TF-IDF keywords both come from what it gained (or lost),
the current window's excess over what the reference share predicts, or from all of it when
it merely grew or shrank as a whole. Every text that leaves this module has been through
`redact`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors._stats import (
    bh_adjusted,
    permutation_p_value,
    subsample,
    two_proportion_p_value,
)
from detectors.redact import redact

_EXAMPLE_CHARS = 300
_NEIGHBOURS = 10
_MIN_PART = 5  # the fewest texts a cluster's gained (lost) part is described by
_MIN_SPLIT = 10  # the fewest texts on either side of a split
_SPLIT_P = 1e-3
_TOKEN = re.compile(r"[a-z][a-z0-9'\-]{2,}")
_PLACEHOLDER = re.compile(r"\[(?:SECRET|EMAIL|CARD|PHONE)\]")
_STOPWORD_TEXT = """
about above after again against all also and any are aren't because been before being
below between both but can can't cannot could couldn't did didn't does doesn't doing don't
down during each few for from further had hadn't has hasn't have haven't having her here
hers herself him himself his how i'm i've into isn't it's its itself just let's more most
mustn't myself nor not now off once only other our ours ourselves out over own same shan't
she should shouldn't some such than that that's the their theirs them themselves then there
there's these they they're this those through too under until very was wasn't were weren't
what what's when where which while who whom why will with won't would wouldn't you you're
your yours yourself yourselves get got may might must one please thanks thank want need
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterShift:
    """One cluster of the pooled windows and how its share moved."""

    cluster: int
    size: int  # rows of both windows in the cluster
    share_reference: float
    share_current: float
    p_value: float  # two-proportion z-test, equal shares
    q_value: float  # Benjamini-Hochberg across all clusters of the explanation
    examples: tuple[str, ...]  # redacted; members typical of what it gained (or lost)
    example_rows: tuple[int, ...]  # their rows in the current window, or the reference's
    #                                when the cluster shrank (change < 0)
    keywords: tuple[str, ...]

    @property
    def change(self) -> float:
        return self.share_current - self.share_reference

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "size": self.size,
                "share_reference": self.share_reference, "share_current": self.share_current,
                "p_value": self.p_value, "q_value": self.q_value,
                "examples": list(self.examples), "keywords": list(self.keywords),
                "example_rows": list(self.example_rows),
                "example_window": "current" if self.change >= 0 else "reference"}


def explain(reference: np.ndarray, current: np.ndarray, reference_texts: Sequence[str],
            current_texts: Sequence[str], *, min_clusters: int = 8, max_clusters: int = 20,
            max_samples: int = 2000, examples: int = 3, keywords: int = 5,
            seed: int = 0, redact: Callable[[str], str] = redact) -> tuple[ClusterShift, ...]:
    """Clusters of reference + current, the most moved (|share change|) first.

    k is sqrt(rows / 10) clipped to [min_clusters, max_clusters] and to one cluster per
    five rows; a cluster whose two halves (by 2-means) differ in their window mix is then
    split, up to k more clusters. Windows above `max_samples` rows are subsampled uniformly
    (seeded). A cluster's keywords and examples describe what it gained (or lost), not
    every member.
    """
    if len(reference) != len(reference_texts) or len(current) != len(current_texts):
        raise ValueError("each window needs exactly one text per embedding row")
    if len(reference) == 0 or len(current) == 0:
        raise ValueError("both windows need at least one row to explain a change")
    rng = np.random.default_rng(seed)
    ref_rows = subsample(len(reference), max_samples, rng)
    cur_rows = subsample(len(current), max_samples, rng)
    pooled = _unit(np.vstack([reference[ref_rows], current[cur_rows]]))
    texts = [reference_texts[i] for i in ref_rows] + [current_texts[i] for i in cur_rows]
    origin = np.concatenate([ref_rows, cur_rows])
    is_current = np.arange(len(pooled)) >= len(ref_rows)
    k = int(np.clip(round(math.sqrt(len(pooled) / 10)), min_clusters, max_clusters))
    k = max(1, min(k, len(pooled) // 5))
    labels, _ = spherical_kmeans(pooled, k, rng)
    labels = split_mixed(pooled, labels, is_current, rng, max_splits=k)
    redacted = [redact(t) for t in texts]
    vocabulary = _Vocabulary.of(redacted, clusters=len(np.unique(labels)))
    shifts = [_shift(c, labels, is_current, pooled, redacted, examples, keywords, origin,
                     vocabulary) for c in np.unique(labels)]
    q_values = bh_adjusted([s.p_value for s in shifts])
    ranked = sorted(zip(shifts, q_values, strict=True), key=lambda sq: -abs(sq[0].change))
    return tuple(dataclasses.replace(s, q_value=q) for s, q in ranked)


def split_mixed(pooled: np.ndarray, labels: np.ndarray, is_current: np.ndarray,
                rng: np.random.Generator, *, max_splits: int, min_size: int = _MIN_SPLIT,
                p_split: float = _SPLIT_P) -> np.ndarray:
    """Split clusters whose members disagree: a fixed k lets a new topic share a cluster
    with an old one. Each cluster (most moved first) is cut in two by spherical 2-means,
    which never sees the windows, and the cut is kept when the two parts' window mix
    differs (two-proportion test, p <= `p_split`); kept parts are tried again. Parts of one
    cluster whose mix does not differ are joined again at the end, so that a new topic cut
    in two comes back whole."""
    labels = labels.copy()
    n_cur, n_ref = int(is_current.sum()), int((~is_current).sum())

    def moved(c: int) -> float:
        member = labels == c
        change = (member & is_current).sum() / n_cur - (member & ~is_current).sum() / n_ref
        return -abs(float(change))

    root = {int(c): int(c) for c in np.unique(labels)}
    pending = sorted(root, key=moved)
    splits = 0
    while pending and splits < max_splits:
        rows = np.flatnonzero(labels == pending.pop(0))
        if len(rows) < 2 * min_size:
            continue
        halves, _ = spherical_kmeans(pooled[rows], 2, rng, restarts=2)
        part_a, part_b = rows[halves == 0], rows[halves == 1]
        if min(len(part_a), len(part_b)) < min_size or _mix_p(is_current, part_a,
                                                              part_b) > p_split:
            continue
        fresh = max(root) + 1
        labels[part_b] = fresh
        root[fresh] = root[int(labels[part_a[0]])]
        pending += [int(labels[part_a[0]]), fresh]
        splits += 1
    for family in set(root.values()):
        _join_alike(labels, is_current, [c for c, r in root.items() if r == family], p_split)
    return labels


def _mix_p(is_current: np.ndarray, part_a: np.ndarray, part_b: np.ndarray) -> float:
    """Two-proportion p-value that two sets of rows have the same share of current rows."""
    return two_proportion_p_value(int(is_current[part_a].sum()), len(part_a),
                                  int(is_current[part_b].sum()), len(part_b))


def _join_alike(labels: np.ndarray, is_current: np.ndarray, parts: list[int],
                p_split: float) -> None:
    """Join the two parts whose mix is most alike while it does not differ (in place)."""
    while len(parts) > 1:
        rows = {c: np.flatnonzero(labels == c) for c in parts}
        p, a, b = max((_mix_p(is_current, rows[a], rows[b]), a, b)
                      for i, a in enumerate(parts) for b in parts[i + 1:])
        if p <= p_split:
            return
        labels[rows[b]] = a
        parts.remove(b)


def _shift(cluster: int, labels: np.ndarray, is_current: np.ndarray, pooled: np.ndarray,
           texts: Sequence[str], n_examples: int, n_keywords: int, origin: np.ndarray,
           vocabulary: _Vocabulary) -> ClusterShift:
    member = labels == cluster
    n_cur, n_ref = int(is_current.sum()), int((~is_current).sum())
    hits_cur, hits_ref = int((member & is_current).sum()), int((member & ~is_current).sum())
    grew = hits_cur / n_cur >= hits_ref / n_ref
    # what the cluster gained (lost): the excess of the side it grew towards over what the
    # other side's share predicts, taken from the members most typical of that side
    side, other = (hits_cur, hits_ref * n_cur / n_ref) if grew else (
        hits_ref, hits_cur * n_ref / n_cur)
    typical = _typical(pooled, member, is_current, grew)
    part = typical[:max(round(side - other), min(_MIN_PART, len(typical)))]
    chosen = _distinct(texts, part, n_examples)
    if side - other < side / 2 and not _sides_apart(pooled, np.flatnonzero(member),
                                                    is_current):
        # a cluster that merely grew (or shrank) as a whole: describe all of it
        part = np.flatnonzero(member)
    return ClusterShift(cluster=int(cluster), size=int(member.sum()),
                        share_reference=hits_ref / n_ref, share_current=hits_cur / n_cur,
                        p_value=two_proportion_p_value(hits_cur, n_cur, hits_ref, n_ref),
                        q_value=1.0, keywords=vocabulary.keywords(part, n_keywords),
                        examples=tuple(text for text, _ in chosen),
                        example_rows=tuple(int(origin[row]) for _, row in chosen))


def _sides_apart(pooled: np.ndarray, rows: np.ndarray, is_current: np.ndarray, *,
                 permutations: int = 199, p_apart: float = 0.01) -> bool:
    """Whether a cluster's rows from either window keep apart: more of their nearest
    neighbours in the cluster come from their own window than a random relabelling gives
    (a permutation test). Then what it gained (lost) differs from what it kept."""
    labels = is_current[rows]
    if labels.all() or not labels.any() or len(rows) < 2 * _MIN_PART:
        return True
    similarity = pooled[rows] @ pooled[rows].T
    np.fill_diagonal(similarity, -np.inf)
    k = min(_MIN_PART, len(rows) - 1)
    neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    rng = np.random.default_rng(len(rows))
    relabelled = np.vstack([labels, [rng.permutation(labels) for _ in range(permutations)]])
    same = (relabelled[:, neighbours] == relabelled[:, :, None]).sum(axis=(1, 2))
    p_value: float = permutation_p_value(float(same[0]), same[1:].astype(float))
    return p_value <= p_apart


def _typical(pooled: np.ndarray, member: np.ndarray, is_current: np.ndarray,
             grew: bool) -> np.ndarray:
    """Members on the side the cluster grew towards, those whose nearest neighbours in the
    cluster are most from that side first (then nearest the side's centroid): where a new
    topic joined an old one, the new topic's texts lead."""
    rows = np.flatnonzero(member)
    side = is_current[rows] if grew else ~is_current[rows]
    weight = np.where(is_current[rows], 1 / is_current.sum(), 1 / (~is_current).sum())
    similarity = pooled[rows] @ pooled[rows].T
    np.fill_diagonal(similarity, -np.inf)
    k = min(_NEIGHBOURS, len(rows) - 1)
    if k > 0:
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        own = (weight[neighbours] * side[neighbours]).sum(axis=1) / weight[neighbours].sum(1)
    else:
        own = np.ones(len(rows))
    centre = pooled[rows[side]].mean(axis=0)
    closeness = pooled[rows] @ centre
    order = np.lexsort((-closeness, -own))
    chosen: np.ndarray = rows[order[side[order]]]
    return chosen


def _distinct(texts: Sequence[str], order: np.ndarray, n: int) -> list[tuple[str, int]]:
    """The first n distinct texts (whitespace collapsed, cut at a word) and their rows."""
    chosen: dict[str, int] = {}
    for row in order:
        text = " ".join(texts[row].split())
        if len(text) > _EXAMPLE_CHARS:
            text = text[:_EXAMPLE_CHARS].rsplit(" ", 1)[0] + " …"
        chosen.setdefault(text, int(row))
        if len(chosen) == n:
            break
    return list(chosen.items())


def spherical_kmeans(x: np.ndarray, k: int, rng: np.random.Generator, *,
                     restarts: int = 3, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit centroids maximising total cosine similarity; best of `restarts`."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(restarts):
        centroids = _kmeans_plus_plus(x, k, rng)
        labels = np.full(len(x), -1)
        for _ in range(iterations):
            new_labels = np.argmax(x @ centroids.T, axis=1)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            centroids = _centroids(x, labels, centroids)
        score = float((x * centroids[labels]).sum())
        if best is None or score > best[0]:
            best = (score, labels, centroids)
    assert best is not None  # restarts >= 1
    return best[1], best[2]


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [int(rng.integers(len(x)))]
    distance = 1 - x @ x[chosen[0]]
    for _ in range(1, k):
        weights = np.maximum(distance, 0) ** 2
        total = weights.sum()
        pick = int(rng.choice(len(x), p=weights / total)) if total > 0 else int(
            rng.integers(len(x)))
        chosen.append(pick)
        distance = np.minimum(distance, 1 - x @ x[pick])
    centroids: np.ndarray = x[chosen].copy()
    return centroids


def _centroids(x: np.ndarray, labels: np.ndarray, previous: np.ndarray) -> np.ndarray:
    sums = np.zeros_like(previous)
    np.add.at(sums, labels, x)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    empty = norms[:, 0] == 0
    sums[empty] = previous[empty]  # an emptied cluster keeps its centre
    norms[empty] = 1
    centroids: np.ndarray = sums / norms
    return centroids


@dataclass(frozen=True, slots=True)
class _Vocabulary:
    """The distinct terms of each text, and in how many distinct texts of the pooled
    windows each term occurs. Keywords count texts, not tokens, so that a few long answers
    cannot outweigh many short ones, and a text repeated many times counts once."""

    texts: tuple[str, ...]
    terms: tuple[frozenset[str], ...]
    document_frequency: Counter[str]
    clusters: int

    @staticmethod
    def of(texts: Sequence[str], clusters: int) -> _Vocabulary:
        terms = tuple(frozenset(t for t in _TOKEN.findall(_PLACEHOLDER.sub(" ", text).lower())
                                if t not in _STOPWORDS) for text in texts)
        distinct = dict(zip(texts, terms, strict=True))
        frequency = Counter(t for words in distinct.values() for t in words)
        return _Vocabulary(tuple(texts), terms, frequency, clusters)

    def keywords(self, rows: np.ndarray, n: int) -> tuple[str, ...]:
        """c-TF-IDF over distinct texts: the share of the rows' texts that use a term, times
        log(1 + mean texts per cluster / the number of texts that use it); a term must be
        shared by two of the texts when there are several."""
        distinct = {self.texts[row]: self.terms[row] for row in rows}
        counts = Counter(t for words in distinct.values() for t in words)
        shared = 2 if len(distinct) >= _MIN_PART else 1
        mean_size = sum(1 for _ in set(self.texts)) / max(self.clusters, 1)
        score = {t: c / len(distinct) * math.log(1 + mean_size / self.document_frequency[t])
                 for t, c in counts.items() if c >= shared}
        return tuple(sorted(score, key=lambda t: (-score[t], t))[:n])


def _unit(x: np.ndarray) -> np.ndarray:
    rows = np.asarray(x, dtype=np.float32)
    unit: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return unit
