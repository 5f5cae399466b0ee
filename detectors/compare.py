"""A and B compared: two sets of calls (two models, two releases), measure by measure.

Pure: columns of numbers in, frozen dataclasses out; no store, network or clock. Each
measure is one small function of the two sides (`MEASURES`), so a new one is a function
and a table entry; the evaluations give two measures per evaluation name both sides carry
(`evaluation_measures`). A measure gives both sides' values,
a two-sided p-value, a 95% interval of B - A where one applies, and which way is worse;
`compare` then decides every measure of the comparison together (Benjamini-Hochberg at
`alpha`, as the detectors do across a run) and writes each one's verdict and the summary.

Tests: Mann-Whitney U for the median latency, tokens per call, cost per call (priced calls
only) and an evaluation's scores; Fisher's exact test on
the calls above the pooled 95th percentile for p95 latency (under no change A's and B's
calls are exchangeable, so the count of A's calls above any pooled quantile is
hypergeometric); Fisher's exact test for the error and toxic rates and an evaluation's
pass rate; for completions the
drift detector's tests on embeddings (MMD, novelty, scan, and the paired sign-flip test on
prompts both sides answered), combined by Simes. Below `min_samples` on either side a
measure says "insufficient data", never "no difference".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from detectors._stats import bh_adjusted, wilson_interval
from detectors.drift import DriftSettings, evaluate
from detectors.evaluation import Scores

_BOOTSTRAPS = 400
_Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Side:
    """One side's calls as columns (capped samples, the same calls in every column).

    Token columns hold NaN where a call did not report them. `toxicity` holds the scores of
    a sample of completions and `embeddings` the embedding rows of a sample of completions
    (None: not scored or embedded), with `prompt_keys` naming each row's prompt so that
    answers of A and B to the same prompt can be paired.
    """

    durations_s: np.ndarray
    errors: np.ndarray  # bool
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    toxicity: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    prompt_keys: tuple[str, ...] = ()
    #: the cost in USD of a sample of the side's priced calls (None: not read)
    cost_usd: np.ndarray | None = None
    #: per evaluation name, a sample of the side's evaluations (scores and pass marks)
    evaluations: Mapping[str, Scores] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.durations_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class CompareSettings:
    alpha: float = 0.01  # false-discovery rate across the measures of one comparison
    min_samples: int = 30  # per side and measure; below it: insufficient data
    toxicity_threshold: float = 0.5
    drift: DriftSettings = field(default_factory=lambda: DriftSettings(
        min_samples=30, permutations=500, max_samples=1000))
    seed: int = 0
    #: evaluation names compared, those most common on both sides together
    max_evaluations: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha: must lie in (0, 1), got: {self.alpha}")
        if self.min_samples < 2:
            raise ValueError(f"min_samples: must be at least 2, got: {self.min_samples}")
        if self.max_evaluations < 0:
            raise ValueError(f"max_evaluations: must be at least 0, got: {self.max_evaluations}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Measure:
    """One measure of a comparison. `worse` says whether B is worse than A on it (None
    where neither way is worse, as for drift); `significant` and `verdict` are set when the
    comparison decides all of its measures together."""

    measure: str  # e.g. "latency_p95", "evaluation_pass_rate:relevance"
    label: str  # for people: "p95 latency"
    unit: str  # "s", "", "tokens", ...
    test: str  # the test behind the p-value
    a: float | None
    b: float | None
    n_a: int
    n_b: int
    p_value: float | None = None  # None: insufficient data, or not measured
    interval: tuple[float, float] | None = None  # 95% interval of b - a
    effect_ok: bool = True  # the effect clears its gate (drift's effect sizes)
    effect: float | None = None
    note: str = ""  # why there is no p-value, when there is none
    significant: bool | None = None
    worse: bool | None = None
    verdict: str = ""
    evaluation: str | None = None  # the evaluation name of an evaluation measure

    @property
    def family(self) -> str:
        """The measure without its evaluation name: `evaluation_pass_rate`."""
        return self.measure.partition(":")[0]


MeasureFn = Callable[[Side, Side, CompareSettings], Measure]
#: measures of which there are several per comparison (one per evaluation name)
MeasuresFn = Callable[[Side, Side, CompareSettings], Sequence[Measure]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    measures: tuple[Measure, ...]
    verdict: str
    regressed: tuple[str, ...]  # measures on which B is significantly worse


def compare(a: Side, b: Side, settings: CompareSettings = CompareSettings(),
            measures: Sequence[MeasureFn] | None = None,
            families: Sequence[MeasuresFn] | None = None) -> Comparison:
    """Every measure of A against B, decided together at `settings.alpha` (`MEASURES` and
    `FAMILIES` unless others are given)."""
    found = [fn(a, b, settings) for fn in (MEASURES if measures is None else measures)]
    for many in FAMILIES if families is None else families:
        found.extend(many(a, b, settings))
    p_values = {i: m.p_value for i, m in enumerate(found) if m.p_value is not None}
    tested = list(p_values)
    q_values = bh_adjusted(list(p_values.values()))
    rejected = {i: q <= settings.alpha for i, q in zip(tested, q_values, strict=True)}
    decided = tuple(_decided(m, rejected.get(i)) for i, m in enumerate(found))
    regressed = tuple(m.measure for m in decided if m.significant and m.worse)
    return Comparison(measures=decided, verdict=_summary(decided, regressed),
                      regressed=regressed)


def _decided(m: Measure, rejected: bool | None) -> Measure:
    if rejected is None:
        why = m.note or f"fewer than the samples needed on a side (A {m.n_a}, B {m.n_b})"
        return replace(m, significant=None, worse=None, verdict=f"{m.label}: {why}")
    significant = rejected and m.effect_ok
    worse = m.worse if significant else False
    values = _values(m)
    p = f"p={m.p_value:.2g}"
    if not significant:
        return replace(m, significant=False, worse=False,
                       verdict=f"{m.label}: no significant difference ({values}, {p})")
    way = "worse" if worse else ("better" if m.worse is False else "different")
    return replace(m, significant=True, worse=worse,
                   verdict=f"{m.label}: B is {way} ({values}, {p})")


def _values(m: Measure) -> str:
    if m.a is None or m.b is None:
        return f"effect {m.effect:.2f}" if m.effect is not None else "no values"
    unit = f" {m.unit}" if m.unit else ""
    change = f", {(m.b - m.a) / m.a:+.0%}" if m.a else ""
    return f"A {_num(m.a)}{unit}, B {_num(m.b)}{unit}{change}"


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _summary(measures: Sequence[Measure], regressed: Sequence[str]) -> str:
    labels = {m.measure: m.label for m in measures}
    if regressed:
        return "B regressed: " + ", ".join(labels[r] for r in regressed) + " worse than A"
    differ = [m.label for m in measures if m.significant]
    if differ:
        return "B differs from A without regressing: " + ", ".join(differ)
    if all(m.significant is None for m in measures):
        return "insufficient data to compare A and B"
    return "no significant difference between A and B"


# -- the measures -----------------------------------------------------------------------------


def latency_p50(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """Median duration; Mann-Whitney U (is one side's duration stochastically larger)."""
    x, y = _finite(a.durations_s), _finite(b.durations_s)
    m = Measure(measure="latency_p50", label="median latency", unit="s", test="mann-whitney-u",
                a=_quantile(x, 0.5), b=_quantile(y, 0.5), n_a=len(x), n_b=len(y))
    if min(len(x), len(y)) < settings.min_samples:
        return m
    p = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return replace(m, p_value=_p(p), worse=bool(m.b is not None and m.a is not None
                                                and m.b > m.a),
                   interval=_bootstrap(x, y, lambda v: np.quantile(v, 0.5, axis=-1), settings))


def latency_p95(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """95th percentile duration; Fisher's exact test on the calls above the pooled p95."""
    x, y = _finite(a.durations_s), _finite(b.durations_s)
    m = Measure(measure="latency_p95", label="p95 latency", unit="s",
                test="fisher-exact-above-pooled-p95", a=_quantile(x, 0.95),
                b=_quantile(y, 0.95), n_a=len(x), n_b=len(y))
    if min(len(x), len(y)) < settings.min_samples:
        return m
    cut = float(np.quantile(np.concatenate([x, y]), 0.95))
    above_a, above_b = int((x > cut).sum()), int((y > cut).sum())
    p = _fisher(above_a, len(x), above_b, len(y))
    worse = above_b / len(y) > above_a / len(x)
    return replace(m, p_value=p, worse=worse,
                   interval=_bootstrap(x, y, lambda v: np.quantile(v, 0.95, axis=-1), settings))


def error_rate(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """Share of failed calls; Fisher's exact test, Newcombe's interval of the difference."""
    n_a, n_b = len(a.errors), len(b.errors)
    hits_a, hits_b = int(np.sum(a.errors)), int(np.sum(b.errors))
    return _rates("error_rate", "error rate", hits_a, n_a, hits_b, n_b, settings)


def input_tokens(a: Side, b: Side, settings: CompareSettings) -> Measure:
    return _tokens("input_tokens", "input tokens per call", a.input_tokens, b.input_tokens,
                   settings)


def output_tokens(a: Side, b: Side, settings: CompareSettings) -> Measure:
    return _tokens("output_tokens", "output tokens per call", a.output_tokens,
                   b.output_tokens, settings)


def toxicity_rate(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """Share of completions scored toxic by the toxicity job's classifier."""
    if a.toxicity is None or b.toxicity is None:
        return Measure(measure="toxicity_rate", label="toxic completion rate", unit="",
                       test="fisher-exact", a=None, b=None, n_a=0, n_b=0,
                       note="not measured: the toxicity detector is off")
    t = settings.toxicity_threshold
    hits_a, hits_b = int((a.toxicity >= t).sum()), int((b.toxicity >= t).sum())
    return _rates("toxicity_rate", "toxic completion rate", hits_a, len(a.toxicity), hits_b,
                  len(b.toxicity), settings)


def cost_per_call(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """Mean cost in USD of a priced call (calls of unpriced models left out); Mann-Whitney U,
    as the cost detector tests spend, and a bootstrap interval of the difference of means."""
    if a.cost_usd is None or b.cost_usd is None:
        return Measure(measure="cost_per_call", label="cost per call", unit="USD",
                       test="mann-whitney-u", a=None, b=None, n_a=0, n_b=0,
                       note="not measured: costs were not read")
    m = _tokens("cost_per_call", "cost per call", a.cost_usd, b.cost_usd, settings)
    m = replace(m, unit="USD")
    if m.p_value is None and not (m.n_a and m.n_b):
        return replace(m, note="not measured: no priced calls on a side (is the model in "
                               "the pricing table?)")
    return m


def evaluation_measures(a: Side, b: Side, settings: CompareSettings) -> tuple[Measure, ...]:
    """Per evaluation name both sides carry (the `max_evaluations` most common), the pass
    rate (Fisher's exact test, Newcombe's interval) and the mean score (Mann-Whitney U);
    B is worse when lower."""
    found: list[Measure] = []
    counts_a = {name: s.n for name, s in a.evaluations.items()}
    counts_b = {name: s.n for name, s in b.evaluations.items()}
    for name in shared_evaluations(counts_a, counts_b, settings.max_evaluations):
        x, y = a.evaluations[name], b.evaluations[name]
        passed_a, passed_b = x.judged, y.judged
        rate = _rates(f"evaluation_pass_rate:{name}", f"{name} pass rate",
                      int(passed_a.sum()), len(passed_a), int(passed_b.sum()), len(passed_b),
                      settings)
        if rate.worse is not None and rate.a is not None and rate.b is not None:
            rate = replace(rate, worse=rate.b < rate.a)  # fewer passing is worse
        if not (len(passed_a) and len(passed_b)):
            rate = replace(rate, note="not measured: no evaluations with a label or a score "
                                      "to hold to the pass threshold")
        score = _tokens(f"evaluation_score:{name}", f"{name} mean score", x.scored, y.scored,
                        settings)
        score = replace(score, unit="", worse=None if score.worse is None else bool(
            score.a is not None and score.b is not None and score.b < score.a))
        if score.p_value is None and not (score.n_a and score.n_b):
            score = replace(score, note="not measured: the evaluations carry no scores")
        found += [replace(rate, evaluation=name), replace(score, evaluation=name)]
    return tuple(found)


def shared_evaluations(a: Mapping[str, int], b: Mapping[str, int], limit: int) -> list[str]:
    """The evaluation names on both sides (each side's count of evaluations per name), the
    `limit` most common on both together (then by name)."""
    both = set(a) & set(b)
    return sorted(both, key=lambda name: (-(a[name] + b[name]), name))[:limit]


def completion_drift(a: Side, b: Side, settings: CompareSettings) -> Measure:
    """Whether B's completions differ from A's: the drift detector's tests (and the paired
    test where both sides answered the same prompts), combined by Simes."""
    m = Measure(measure="completion_drift", label="completion drift", unit="",
                test="mmd+novelty+paired (simes)", a=None, b=None, n_a=0, n_b=0)
    if a.embeddings is None or b.embeddings is None:
        return replace(m, note="not measured: no embedder (drift and toxicity are off)")
    m = replace(m, n_a=len(a.embeddings), n_b=len(b.embeddings))
    drift = replace(settings.drift, min_samples=settings.min_samples, seed=settings.seed)
    if min(m.n_a, m.n_b) < drift.min_samples:
        return m
    pairs = shared_prompts(a.prompt_keys, b.prompt_keys)
    found = evaluate(a.embeddings, b.embeddings, drift,
                     pairs=pairs if len(pairs) >= drift.min_samples else None)
    if not found.tests:
        return m
    gates = {"mmd": drift.min_auc, "novelty": drift.min_novel_excess,
             "scan": drift.min_scan_effect, "paired": drift.min_paired_effect}
    p = min(bh_adjusted([t.p_value for t in found.tests]))  # Simes' global test
    effect_ok = any(t.effect >= gates[t.name] for t in found.tests)
    test = "+".join(t.name for t in found.tests) + " (simes)"
    return replace(m, p_value=_p(p), effect_ok=effect_ok, effect=found.classifier_auc,
                   test=test, worse=None)


def shared_prompts(keys_a: Sequence[str], keys_b: Sequence[str]) -> np.ndarray:
    """(row of A, row of B) pairs of answers to the same prompt, each row used once."""
    first_b: dict[str, int] = {}
    for j, key in enumerate(keys_b):
        if key:
            first_b.setdefault(key, j)
    pairs = []
    for i, key in enumerate(keys_a):
        if key and key in first_b:
            pairs.append((i, first_b.pop(key)))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


#: every measure, in the order reports show them
MEASURES: tuple[MeasureFn, ...] = (
    latency_p50, latency_p95, error_rate, input_tokens, output_tokens, cost_per_call,
    toxicity_rate, completion_drift)
#: the measures there are several of, after those
FAMILIES: tuple[MeasuresFn, ...] = (evaluation_measures,)


# -- shared pieces ------------------------------------------------------------------------------


def _rates(name: str, label: str, hits_a: int, n_a: int, hits_b: int, n_b: int,
           settings: CompareSettings) -> Measure:
    m = Measure(measure=name, label=label, unit="", test="fisher-exact",
                a=hits_a / n_a if n_a else None, b=hits_b / n_b if n_b else None,
                n_a=n_a, n_b=n_b)
    if min(n_a, n_b) < settings.min_samples:
        return m
    return replace(m, p_value=_fisher(hits_a, n_a, hits_b, n_b),
                   worse=hits_b / n_b > hits_a / n_a,
                   interval=newcombe_interval(hits_a, n_a, hits_b, n_b))


def _tokens(name: str, label: str, a: np.ndarray, b: np.ndarray,
            settings: CompareSettings) -> Measure:
    x, y = _finite(a), _finite(b)
    m = Measure(measure=name, label=label, unit="tokens", test="mann-whitney-u",
                a=float(x.mean()) if len(x) else None, b=float(y.mean()) if len(y) else None,
                n_a=len(x), n_b=len(y))
    if min(len(x), len(y)) < settings.min_samples:
        return replace(m, note="" if len(x) and len(y) else "not reported by the calls")
    if np.ptp(np.concatenate([x, y])) == 0:  # every call the same count: nothing to test
        return replace(m, p_value=1.0, worse=False, interval=(0.0, 0.0))
    p = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    return replace(m, p_value=_p(p), worse=bool(m.b is not None and m.a is not None
                                                and m.b > m.a),
                   interval=_bootstrap(x, y, lambda v: v.mean(axis=-1), settings))


def newcombe_interval(hits_a: int, n_a: int, hits_b: int, n_b: int) -> tuple[float, float]:
    """Newcombe's hybrid score 95% interval of rate B - rate A (from Wilson intervals)."""
    pa, pb = hits_a / n_a, hits_b / n_b
    la, ua = wilson_interval(hits_a, n_a)
    lb, ub = wilson_interval(hits_b, n_b)
    d = pb - pa
    low = d - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2)
    high = d + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2)
    return low, high


def _fisher(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float:
    table = [[hits_a, n_a - hits_a], [hits_b, n_b - hits_b]]
    return _p(float(stats.fisher_exact(table, alternative="two-sided").pvalue))


def _bootstrap(x: np.ndarray, y: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray],
               settings: CompareSettings) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of statistic(B) - statistic(A)."""
    rng = np.random.default_rng(settings.seed)
    xs = x[rng.integers(0, len(x), size=(_BOOTSTRAPS, len(x)))]
    ys = y[rng.integers(0, len(y), size=(_BOOTSTRAPS, len(y)))]
    diffs = statistic(ys) - statistic(xs)
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def _quantile(values: np.ndarray, q: float) -> float | None:
    return float(np.quantile(values, q)) if len(values) else None


def _p(p: float) -> float:
    return min(1.0, max(0.0, p)) if math.isfinite(p) else 1.0
