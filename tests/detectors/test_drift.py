"""Drift detection: calibrated under no change, sensitive to real shifts, quiet on tiny ones.

Synthetic tests use seeded unit vectors; the scenario tests embed the corpora/ subsets with
the real all-MiniLM-L6-v2 model (see conftest.py) and run at alpha = 0.01.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from detectors._stats import (
    benjamini_hochberg,
    bh_adjusted,
    roc_auc,
    two_proportion_p_value,
    wilson_interval,
)
from detectors.drift import (
    DriftEvaluation,
    DriftSettings,
    DriftTest,
    decide,
    decide_all,
    evaluate,
    hysteresis,
    self_check,
)
from tests.detectors.conftest import Corpus, concat

ALPHA = 0.01
SETTINGS = DriftSettings(alpha=ALPHA)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def topics(rng: np.random.Generator, n: int, centres: np.ndarray,
           weights: np.ndarray | None = None, spread: float = 0.6) -> np.ndarray:
    """n unit vectors around the given topic centres (a mixture on the sphere)."""
    picks = rng.choice(len(centres), size=n, p=weights)
    noise = rng.standard_normal((n, centres.shape[1])) * spread / np.sqrt(centres.shape[1])
    return unit(centres[picks] + noise)


def centres(rng: np.random.Generator, k: int = 8, dim: int = 32) -> np.ndarray:
    return unit(rng.standard_normal((k, dim)))


def detected(evaluation: DriftEvaluation) -> bool | None:
    return decide_all([evaluation], SETTINGS)[0]


# --- calibration and the core tests on synthetic data -----------------------------------


def test_p_values_are_calibrated_under_no_change() -> None:
    rng = np.random.default_rng(7)
    settings = DriftSettings(permutations=199, min_samples=20)
    mmd_p, novelty_p, scan_p = [], [], []
    for run in range(200):
        c = centres(rng, dim=16)
        result = evaluate(topics(rng, 60, c), topics(rng, 60, c),
                          dataclasses.replace(settings, seed=run))
        assert result.mmd is not None and result.novelty is not None
        assert result.scan is not None
        mmd_p.append(result.mmd.p_value)
        novelty_p.append(result.novelty.p_value)
        scan_p.append(result.scan.p_value)
    for p in (np.array(mmd_p), np.array(novelty_p), np.array(scan_p)):
        # binomial slack: 200 runs, 3 standard errors above the nominal rate
        assert (p <= 0.05).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)
        assert (p <= 0.10).mean() <= 0.10 + 3 * np.sqrt(0.10 * 0.90 / 200)
    assert (np.array(mmd_p) <= 0.10).mean() >= 0.05  # calibrated, not merely conservative


def test_batched_mmd_equals_the_textbook_unbiased_estimate() -> None:
    rng = np.random.default_rng(3)
    c = centres(rng)
    x, y = topics(rng, 70, c), topics(rng, 90, c, weights=np.eye(8)[0] * 0.3 + 0.7 / 8)
    result = evaluate(x, y, DriftSettings(min_samples=20, permutations=50))
    assert result.mmd is not None and result.bandwidth is not None

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :].astype(np.float64) - b[None, :, :]) ** 2).sum(-1)
        return np.exp(-d2 / result.bandwidth)  # type: ignore[operator]

    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m, n = len(x), len(y)
    expected = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())
    assert result.mmd.statistic == pytest.approx(expected, abs=1e-5)


def test_the_scan_sums_the_longest_all_current_runs_of_neighbours() -> None:
    rng = np.random.default_rng(4)
    c = centres(rng, k=4, dim=8)
    x, y = topics(rng, 40, c), topics(rng, 50, c, weights=np.r_[0.0, 0.2, 0.3, 0.5])
    settings = DriftSettings(min_samples=20, permutations=20, scan_top=3)
    result = evaluate(x, y, settings)
    assert result.scan is not None
    # neighbours by cosine once the pooled mean and the top 5 principal directions are out
    # (kept here: in 8 dimensions they hold most of the variance)
    pooled = np.vstack([x, y]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    spectrum = np.linalg.svd(centred, compute_uv=False) ** 2
    assert spectrum[:5].sum() >= 0.5 * spectrum.sum()
    rows = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    similarity = rows @ rows.T
    np.fill_diagonal(similarity, -np.inf)
    runs = []
    for row in range(len(x), len(pooled)):  # current rows only
        nearest = np.argsort(-similarity[row], kind="stable")[:40]
        run = 0
        while run < len(nearest) and nearest[run] >= len(x):
            run += 1
        runs.append(run)
    assert result.scan.statistic == sum(sorted(runs)[-3:])


def test_the_scan_looks_for_neighbours_without_the_directions_every_text_shares() -> None:
    # a common direction carries most of each row's length, and the topics differ in the
    # rest: the scan's neighbours are those of the rows with the top directions taken out
    rng = np.random.default_rng(14)
    shared = unit(rng.standard_normal((1, 64)))
    x = unit(3 * shared + topics(rng, 40, centres(rng, k=4, dim=64), spread=2.0))
    y = unit(3 * shared + topics(rng, 50, centres(rng, k=4, dim=64), spread=2.0))
    result = evaluate(x, y, DriftSettings(min_samples=20, permutations=20, scan_top=3))
    pooled = np.vstack([x, y]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    _, spectrum, directions = np.linalg.svd(centred, full_matrices=False)
    assert (spectrum[:5] ** 2).sum() < 0.5 * (spectrum ** 2).sum()
    rest = centred - centred @ directions[:5].T @ directions[:5]
    rows = rest / np.linalg.norm(rest, axis=1, keepdims=True)
    similarity = rows @ rows.T
    np.fill_diagonal(similarity, -np.inf)
    runs = []
    for row in range(len(x), len(pooled)):
        nearest = np.argsort(-similarity[row], kind="stable")[:40]
        runs.append(int(np.argmax(np.r_[nearest < len(x), True])))
    assert result.scan is not None and result.scan.statistic == sum(sorted(runs)[-3:])


def test_a_clear_topic_shift_is_detected_by_both_tests() -> None:
    rng = np.random.default_rng(11)
    c = centres(rng)
    old = np.r_[np.full(7, 1 / 7), 0.0]
    new = np.r_[np.full(7, 0.7 / 7), 0.3]
    result = evaluate(topics(rng, 400, c, old), topics(rng, 400, c, new), SETTINGS)
    assert result.mmd is not None and result.novelty is not None
    assert result.mmd.p_value <= ALPHA and result.novelty.p_value <= ALPHA
    assert result.classifier_auc is not None and result.classifier_auc > 0.6
    assert detected(result) is True


def test_identical_windows_are_not_drift() -> None:
    rng = np.random.default_rng(5)
    x = topics(rng, 500, centres(rng))
    result = evaluate(x, x.copy(), SETTINGS)
    assert detected(result) is False
    assert result.mmd is not None and result.mmd.p_value > 0.5
    # every row's nearest neighbour is its twin in the other window: no run at all
    assert result.scan is not None and result.scan.statistic == 0


def test_windows_of_one_repeated_text_are_no_drift_with_the_reason() -> None:
    # every prompt the same, in both windows: the ridge fit of the classifier had a zero
    # scatter matrix and raised "Singular matrix"
    one_text = np.zeros((200, 64), dtype=np.float32)
    one_text[:, 0] = 1.0
    result = evaluate(one_text[:100], one_text[100:], SETTINGS)
    assert result.sufficient and detected(result) is False
    assert result.reason == "every text in both windows is the same"
    assert all(t.p_value == 1.0 for t in result.tests)


def test_one_repeated_text_replaced_by_another_is_drift() -> None:
    before, after = np.zeros((100, 64), dtype=np.float32), np.zeros((100, 64), dtype=np.float32)
    before[:, 0], after[:, 1] = 1.0, 1.0
    result = evaluate(before, after, SETTINGS)
    assert detected(result) is True and result.reason is None
    assert result.classifier_auc == 1.0


def test_repeated_texts_leave_the_scan_calibrated_whatever_the_order_of_rows() -> None:
    # a few texts, each repeated many times in both windows (templated prompts): neighbours
    # tie, and breaking ties by position sided with the reference rows that come first (the
    # scan's p-value was pinned at 1, or at its minimum for a single text); broken at
    # random, its p-values under no change spread as p-values do
    rng = np.random.default_rng(12)
    texts = unit(rng.standard_normal((5, 64)))
    p_values, alarms = [], 0
    for seed in range(20):
        draw = np.random.default_rng(seed)
        ref, cur = (texts[draw.integers(0, 5, 300)] for _ in range(2))
        settings = dataclasses.replace(SETTINGS, seed=seed)
        result = evaluate(ref, cur, settings)
        assert result.scan is not None
        p_values.append(result.scan.p_value)
        alarms += bool(decide_all([result], settings)[0])
    assert alarms == 0
    assert 0.2 < float(np.median(p_values)) < 0.8 and min(p_values) < 0.5


def test_near_duplicate_texts_give_finite_p_values() -> None:
    # templated prompts differing by a word: the median distance, hence the MMD bandwidth,
    # is tiny, and exp(2 x.y / bandwidth) overflowed to inf and NaN p-values
    rng = np.random.default_rng(13)
    template = unit(rng.standard_normal((1, 64)))
    ref, cur = (unit(template + 1e-3 * rng.standard_normal((300, 64))) for _ in range(2))
    result = evaluate(ref, cur, SETTINGS)
    assert result.bandwidth is not None and result.bandwidth < 1e-3
    assert all(np.isfinite(t.p_value) for t in result.tests)
    assert detected(result) is False


def test_decisions_do_not_depend_on_the_scale_of_the_embeddings() -> None:
    # fixed thresholds on raw distances (Evidently's MMD 0.015, distance 0.2) never fire on
    # unit vectors; p-values and effect sizes read the same at any scale
    rng = np.random.default_rng(6)
    c = centres(rng)
    x = topics(rng, 300, c, np.r_[np.full(7, 1 / 7), 0.0])
    y = topics(rng, 300, c, np.r_[np.full(7, 0.7 / 7), 0.3])
    unit_scale, scaled = evaluate(x, y, SETTINGS), evaluate(x * 40, y * 40, SETTINGS)
    assert detected(unit_scale) is detected(scaled) is True
    assert unit_scale.mmd is not None and scaled.mmd is not None
    assert scaled.mmd.p_value == pytest.approx(unit_scale.mmd.p_value, abs=0.002)
    assert scaled.classifier_auc == pytest.approx(unit_scale.classifier_auc, abs=1e-4)


def test_fewer_calls_than_the_minimum_is_insufficient_data_never_no_drift() -> None:
    rng = np.random.default_rng(1)
    c = centres(rng)
    result = evaluate(topics(rng, 1000, c), topics(rng, 49, c), SETTINGS)
    assert not result.sufficient
    assert result.mmd is None and result.novelty is None and result.classifier_auc is None
    assert decide(result, {"mmd": True, "novelty": True}, SETTINGS) is None
    assert decide_all([result], SETTINGS) == (None,)


def test_large_windows_are_subsampled_and_novel_rows_index_the_current_window() -> None:
    rng = np.random.default_rng(2)
    c = centres(rng)
    outliers = unit(rng.standard_normal((60, 32)))
    current = np.vstack([topics(rng, 2500, c), outliers])
    result = evaluate(topics(rng, 3000, c), current, DriftSettings(max_samples=1000))
    assert (result.n_reference, result.n_current) == (1000, 1000)
    assert all(0 <= i < len(current) for i in result.novel_indices)
    assert sum(i >= 2500 for i in result.novel_indices[:10]) >= 8  # most novel first


def test_the_same_seed_gives_the_same_evaluation() -> None:
    rng = np.random.default_rng(4)
    c = centres(rng)
    x, y = topics(rng, 300, c), topics(rng, 300, c)
    assert evaluate(x, y, SETTINGS) == evaluate(x, y, SETTINGS)


def test_inputs_of_the_wrong_shape_are_rejected() -> None:
    with pytest.raises(ValueError, match="differ in dimension"):
        evaluate(np.ones((60, 8)), np.ones((60, 9)))
    with pytest.raises(ValueError, match="2-D"):
        evaluate(np.ones(60), np.ones((60, 8)))
    with pytest.raises(ValueError, match="non-zero"):
        evaluate(np.zeros((60, 8)), np.ones((60, 8)))


def test_settings_name_the_field_that_is_out_of_range() -> None:
    with pytest.raises(ValueError, match="alpha: must lie in"):
        DriftSettings(alpha=1.5)
    with pytest.raises(ValueError, match="max_samples: must be at least min_samples"):
        DriftSettings(min_samples=100, max_samples=50)
    with pytest.raises(ValueError, match="scan_top: must be at least 1"):
        DriftSettings(scan_top=0)


# --- the paired test ---------------------------------------------------------------------


def test_paired_answers_that_differ_only_by_noise_are_not_drift() -> None:
    rng = np.random.default_rng(8)
    x = topics(rng, 200, centres(rng))
    y = unit(x + rng.standard_normal(x.shape) * 0.05)
    pairs = [(i, i) for i in range(200)]
    p_values = [evaluate(x, y, DriftSettings(seed=s), pairs=pairs).paired for s in range(3)]
    assert all(t is not None and t.p_value > ALPHA for t in p_values)


def test_a_consistent_change_within_pairs_is_detected() -> None:
    rng = np.random.default_rng(9)
    x = topics(rng, 200, centres(rng))
    style = unit(rng.standard_normal((1, 32)))
    y = unit(x + 0.1 * style + rng.standard_normal(x.shape) * 0.05)
    result = evaluate(x, y, SETTINGS, pairs=np.c_[np.arange(200), np.arange(200)])
    assert result.paired is not None and result.paired.p_value <= ALPHA
    assert detected(result) is True


def test_pairs_outside_the_windows_are_rejected() -> None:
    x = unit(np.random.default_rng(0).standard_normal((60, 8)))
    with pytest.raises(ValueError, match="pairs"):
        evaluate(x, x, pairs=[(0, 60)])


# --- decisions: effect gates, FDR across a run, hysteresis --------------------------------


def _evaluation(mmd_p: float, auc: float, novelty_p: float, excess: float) -> DriftEvaluation:
    return DriftEvaluation(
        n_reference=2000, n_current=2000, classifier_auc=auc, centroid_distance=0.0,
        mmd=DriftTest(name="mmd", statistic=1e-4, p_value=mmd_p, effect=auc),
        novelty=DriftTest(name="novelty", statistic=0.02 + excess, p_value=novelty_p,
                          effect=excess))


def test_significant_but_tiny_effects_do_not_count_as_drift() -> None:
    tiny = _evaluation(mmd_p=0.001, auc=0.53, novelty_p=0.001, excess=0.01)
    assert decide(tiny, {"mmd": True, "novelty": True}, SETTINGS) is False
    large = _evaluation(mmd_p=0.001, auc=0.60, novelty_p=0.5, excess=0.0)
    assert decide(large, {"mmd": True, "novelty": False}, SETTINGS) is True


def test_fdr_is_controlled_across_every_segment_of_a_run() -> None:
    borderline = _evaluation(mmd_p=0.004, auc=0.6, novelty_p=0.5, excess=0.0)
    assert decide_all([borderline], SETTINGS) == (True,)
    # among 20 segments (40 tests), one p-value of 0.004 is no longer a discovery at FDR 1 %
    quiet = _evaluation(mmd_p=0.6, auc=0.5, novelty_p=0.7, excess=0.0)
    assert decide_all([borderline] + [quiet] * 19, SETTINGS) == (False,) * 20


def test_benjamini_hochberg_matches_the_worked_example() -> None:
    # Benjamini & Hochberg (1995), section 4: 15 p-values, q = 0.05 rejects the four smallest
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240,
         0.4262, 0.5719, 0.6528, 0.7590, 1.0000]
    assert benjamini_hochberg(p, 0.05) == [True] * 4 + [False] * 11
    assert bh_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.04, 0.04])
    assert benjamini_hochberg([], 0.05) == []


def test_hysteresis_pages_on_k_of_the_last_m_decisions() -> None:
    assert hysteresis([True, False, True], k=2, m=3) is True
    assert hysteresis([True, True, False, False, True], k=2, m=3) is False
    assert hysteresis([True, None, None], k=2, m=3) is False  # insufficient data never pages
    assert hysteresis([], k=1, m=1) is False
    with pytest.raises(ValueError, match="k <= m"):
        hysteresis([True], k=3, m=2)


def test_proportion_helpers_behave_at_the_edges() -> None:
    assert two_proportion_p_value(0, 100, 0, 100) == 1.0
    assert two_proportion_p_value(30, 100, 5, 100) < 1e-4
    low, high = wilson_interval(0, 50)
    assert low == 0.0 and 0.05 < high < 0.1
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5


# --- real traffic: corpora/ embedded with all-MiniLM-L6-v2 -------------------------------


def test_new_topic_at_20_percent_is_detected(banking: Corpus) -> None:
    train, test = banking.split("train"), banking.split("test")
    reference = train.not_labelled("top_up").head(900)
    current = concat(test.not_labelled("top_up").head(560), test.labelled("top_up").head(140))
    result = evaluate(reference.vectors, current.vectors, SETTINGS)
    assert result.mmd is not None and result.novelty is not None
    assert result.mmd.p_value <= ALPHA and result.novelty.p_value <= ALPHA
    assert detected(result) is True


def test_a_new_topic_group_at_5_percent_is_caught_by_the_scan_where_novelty_misses_it(
        banking: Corpus) -> None:
    # top_up queries sit close to other banking intents: few of them look novel one by
    # one, but several have only top_up queries, all current, as their nearest neighbours
    train, test = banking.split("train"), banking.split("test")
    reference = train.not_labelled("top_up")
    current = concat(test.not_labelled("top_up"), test.labelled("top_up").head(50))
    assert 0.04 < 50 / len(current) < 0.06
    result = evaluate(reference.vectors, current.vectors, SETTINGS)
    assert result.novelty is not None and result.novelty.p_value > 0.1
    assert result.scan is not None and result.scan.p_value <= ALPHA / 3
    assert result.scan.effect >= SETTINGS.min_scan_effect
    assert detected(result) is True


def test_identical_windows_of_real_embeddings_are_not_drift(banking: Corpus) -> None:
    reference = banking.split("train").head(1000).vectors
    result = evaluate(reference, reference.copy(), SETTINGS)
    assert detected(result) is False
    assert result.mmd is not None and result.mmd.p_value > 0.5
    assert result.novelty is not None and result.novelty.p_value > 0.5
    assert result.scan is not None and result.scan.p_value > 0.5


def test_jailbreak_prompts_at_5_percent_are_caught_by_the_novelty_test(
        banking: Corpus, jailbreak: Corpus) -> None:
    current = concat(banking.split("test").head(950), jailbreak.head(50))
    result = evaluate(banking.split("train").head(1000).vectors, current.vectors, SETTINGS)
    assert result.novelty is not None and result.novelty.p_value <= ALPHA
    assert result.novelty.effect >= SETTINGS.min_novel_excess
    assert detected(result) is True
    most_novel = [current.labels[i] for i in result.novel_indices[:50]]
    assert most_novel.count("jailbreak") >= 45


def test_out_of_scope_queries_rising_from_0_to_15_percent_are_detected(clinc: Corpus) -> None:
    in_scope, out_of_scope = clinc.not_labelled("oos"), clinc.labelled("oos")
    current = concat(in_scope.take(range(800, 1480)), out_of_scope.head(120))
    result = evaluate(in_scope.head(800).vectors, current.vectors, SETTINGS)
    assert result.novelty is not None and result.novelty.p_value <= ALPHA
    assert detected(result) is True


def test_model_swap_on_the_same_prompts_is_detected(arena: Corpus) -> None:
    gpt4, gpt35 = arena.labelled("gpt-4-0314"), arena.labelled("gpt-3.5-turbo-0125")
    pairs = [(i, i) for i in range(len(gpt4))]  # row i of both answers prompt i
    result = evaluate(gpt4.vectors, gpt35.vectors, SETTINGS, pairs=pairs)
    assert result.paired is not None and result.paired.p_value <= ALPHA
    assert result.paired.effect >= SETTINGS.min_paired_effect
    assert detected(result) is True


def test_same_mix_windows_rarely_alarm(banking: Corpus) -> None:
    train, test = banking.split("train"), banking.split("test")  # no text in both
    rng = np.random.default_rng(20)
    alarms = []
    for run in range(20):
        settings = dataclasses.replace(SETTINGS, seed=run)
        ref = train.take(rng.choice(len(train), 500, replace=False))
        cur = test.take(rng.choice(len(test), 500, replace=False))
        alarms.append(decide_all([evaluate(ref.vectors, cur.vectors, settings)], settings)[0])
    assert None not in alarms
    assert sum(bool(a) for a in alarms) <= 1  # 20 windows at alpha 1 %: binomial slack


def test_self_check_reports_a_false_alarm_rate_within_alpha(clinc: Corpus) -> None:
    settings = dataclasses.replace(SETTINGS, permutations=500)
    check = self_check(clinc.not_labelled("oos").vectors, settings, splits=20)
    assert check.false_alarm_rate is not None and check.false_alarm_rate <= 0.05
    assert len(check.mmd_p_values) == len(check.novelty_p_values) == 20
    assert np.median(check.mmd_p_values) > 0.2  # p-values spread over (0, 1], not piled low


def test_self_check_on_a_tiny_reference_is_insufficient() -> None:
    x = unit(np.random.default_rng(0).standard_normal((80, 8)))
    assert self_check(x, SETTINGS, splits=3).false_alarm_rate is None
