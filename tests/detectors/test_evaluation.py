"""The evaluation statistics: the pass rule, a drop found one-sided, no change quiet at the
configured rate, too few evaluations insufficient, and Holm's correction across names."""

from __future__ import annotations

import numpy as np

from detectors.evaluation import Scores, compare, holm, scores_of

PASS = ("pass", "Relevant")


def window(rng: np.random.Generator, n: int, pass_share: float) -> Scores:
    passed = rng.random(n) < pass_share
    scores = np.where(passed, rng.beta(5, 2, n), rng.beta(2, 5, n))
    return scores_of(list(scores), [None] * n, pass_labels=PASS, pass_threshold=0.5)


def test_labels_decide_before_the_threshold_and_neither_leaves_it_out() -> None:
    found = scores_of([0.9, 0.9, 0.2, None, 0.7], ["fail", "RELEVANT", None, "pass", None],
                      pass_labels=PASS, pass_threshold=0.5)
    assert found.passed.tolist() == [0.0, 1.0, 0.0, 1.0, 1.0]
    without = scores_of([0.9, None], [None, None], pass_labels=PASS, pass_threshold=None)
    assert without.pass_rate is None and without.mean_score == 0.9


def test_a_drop_is_found_and_a_rise_is_not() -> None:
    rng = np.random.default_rng(1)
    reference = window(rng, 200, 0.9)
    dropped = compare(window(rng, 200, 0.6), reference, min_samples=30)
    assert dropped.p_value is not None and dropped.p_value < 1e-6
    assert dropped.pass_rate_drop is not None and dropped.pass_rate_drop > 0.2
    rose = compare(window(rng, 200, 0.99), reference, min_samples=30)
    assert rose.p_value is not None and rose.p_value > 0.5  # one-sided: better is no alarm


def test_no_change_raises_false_alarms_at_most_at_the_rate_asked() -> None:
    rng = np.random.default_rng(2)
    alarms = [compare(window(rng, 80, 0.8), window(rng, 80, 0.8), min_samples=30).p_value
              for _ in range(400)]
    rate = float(np.mean([p is not None and p < 0.05 for p in alarms]))
    assert rate <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400), rate


def test_too_few_on_either_side_is_insufficient_data() -> None:
    rng = np.random.default_rng(3)
    assert compare(window(rng, 29, 0.1), window(rng, 200, 0.9), min_samples=30).p_value is None
    assert compare(window(rng, 200, 0.1), window(rng, 29, 0.9), min_samples=30).p_value is None


def test_equal_scores_everywhere_are_no_drop() -> None:
    same = scores_of([1.0] * 40, [None] * 40, pass_labels=PASS, pass_threshold=0.5)
    assert compare(same, same, min_samples=30).p_score == 1.0


def test_holm_corrects_across_names_and_leaves_untested_ones() -> None:
    assert holm([0.01, None, 0.04, 0.03]) == [0.03, None, 0.06, 0.06]
    assert holm([]) == []
