"""The threshold rules: the raw HTER optimum (brute force agrees), and the robust rule."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecls.evaluation.rates import hter, labels_at
from facecls.evaluation.thresholds import choose_threshold, hter_optimal_threshold
from tests.test_rates import labelled_scores


@st.composite
def labels_and_scores(draw):
    n = draw(st.integers(2, 40))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n))
    # Few distinct values so ties between scores are common.
    scores = draw(st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5001, 0.7, 1.0]), min_size=n, max_size=n))
    return np.array(labels), np.array(scores)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        hter_optimal_threshold([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match="not one of"):
        choose_threshold([0, 1], [0.2, 0.8], method="best")
    with pytest.raises(ValueError, match="undefined"):
        hter_optimal_threshold([1] * 5, [0.3] * 5)


def test_optimal_threshold_separates_separable_classes():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 20 + [1] * 80)
    scores = np.where(labels == 1, rng.uniform(0.7, 0.95, 100), rng.uniform(0.05, 0.6, 100))
    threshold, best = hter_optimal_threshold(labels, scores)
    assert best == 0
    assert scores[labels == 0].max() < threshold < scores[labels == 1].min()


def brute_force_best_hter(labels, scores):
    # Any threshold predicts like one of the scores themselves or like +inf.
    candidates = np.append(np.unique(scores), np.inf)
    return min(hter(labels, labels_at(scores, t)) for t in candidates)


def test_optimal_threshold_matches_brute_force_on_handmade_case():
    labels = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 1])
    scores = np.array([0.10, 0.20, 0.20, 0.35, 0.40, 0.60, 0.65, 0.70, 0.90, 0.95])
    threshold, best = hter_optimal_threshold(labels, scores)
    assert best == pytest.approx(brute_force_best_hter(labels, scores))
    # Below the cut between 0.35 and 0.40: three of four 0s and one of six 1s,
    # HTER (1/4 + 1/6) / 2; the next best, above 0.65, gives (0 + 3/6) / 2.
    assert (threshold, best) == (pytest.approx(0.375), pytest.approx((1 / 4 + 1 / 6) / 2))


@settings(max_examples=200, deadline=None)
@given(labels_and_scores())
def test_optimal_threshold_matches_brute_force(case):
    labels, scores = case
    threshold, best = hter_optimal_threshold(labels, scores)
    assert best == pytest.approx(brute_force_best_hter(labels, scores))
    assert hter(labels, labels_at(scores, threshold)) == pytest.approx(best)


def test_optimal_threshold_ties_go_to_the_one_nearest_0_5():
    # Cutting at 0.2 or at 0.75 both give HTER 0.25; 0.75 is nearer 0.5.
    threshold, best = hter_optimal_threshold([0, 1, 0, 1], [0.1, 0.3, 0.6, 0.9])
    assert (threshold, best) == (pytest.approx(0.75), pytest.approx(0.25))


def test_fixed_method_returns_0_5():
    labels, scores = labelled_scores(np.random.default_rng(1), 500, 0.5, 3.5, 1.0)
    choice = choose_threshold(labels, scores, method="0.5")
    assert choice["threshold"] == 0.5
    assert choice["optimal_threshold"] != 0.5
    assert choice["hter_at_threshold"] == choice["hter_at_0_5"]


def test_optimal_method_returns_raw_optimum():
    labels, scores = labelled_scores(np.random.default_rng(1), 500, 0.5, 3.5, 1.0)
    choice = choose_threshold(labels, scores, method="optimal")
    assert (choice["threshold"], choice["hter_at_threshold"]) == hter_optimal_threshold(labels, scores)


def test_robust_finds_an_offset_optimum_on_a_large_clean_set():
    # Logits centred at 0.5 and 2.5 put the best threshold at sigmoid(1.5) ~ 0.82.
    labels, scores = labelled_scores(np.random.default_rng(2), 5000, 0.5, 2.5, 0.5)
    choice = choose_threshold(labels, scores, method="robust")
    assert choice["threshold"] == pytest.approx(1 / (1 + np.exp(-1.5)), abs=0.02)
    assert choice["hter_at_threshold"] < choice["hter_at_0_5"] - 0.2
    assert not choice["fell_back_to_0_5"]


def test_robust_falls_back_to_0_5_when_scores_are_noise():
    labels, scores = labelled_scores(np.random.default_rng(3), 30, 0.0, 0.0, 1.0)
    choice = choose_threshold(labels, scores, method="robust")
    assert choice["optimal_threshold"] != 0.5 and choice["optimal_hter"] < choice["hter_at_0_5"]
    assert choice["threshold"] == 0.5
    assert choice["fell_back_to_0_5"]


def test_robust_keeps_0_5_for_small_centred_sets():
    # What a class-weighted loss gives: informative scores already balanced at 0.5.
    kept = 0
    for seed in range(5):
        labels, scores = labelled_scores(np.random.default_rng(seed), 200, -1.5, 1.5, 1.2)
        kept += choose_threshold(labels, scores, seed=seed)["threshold"] == 0.5
    assert kept == 5


def test_robust_is_deterministic_for_a_seed():
    labels, scores = labelled_scores(np.random.default_rng(4), 300, 0.0, 2.0, 1.0)
    assert choose_threshold(labels, scores, seed=7) == choose_threshold(labels, scores, seed=7)
    json.dumps(choose_threshold(labels, scores, seed=7), allow_nan=False)


def test_robust_falls_back_when_too_few_out_of_bag_checks():
    # With one accessory face every resample draws it, so none is left out of bag.
    labels = [0] + [1] * 9
    scores = [0.9] + [0.95] * 9
    choice = choose_threshold(labels, scores)
    assert choice["threshold"] == 0.5 and choice["n_oob_evaluations"] == 0
    assert choice["oob_gain_mean"] is None
    json.dumps(choice, allow_nan=False)
