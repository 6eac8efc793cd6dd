import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score

from facecls.metrics import (
    CLASS_NAMES,
    choose_threshold,
    classification_report,
    confusion_rows,
    hter,
    hter_optimal_threshold,
    most_confident_errors,
    recalls,
    roc_points,
)


def labelled_scores(rng, n, centre_0, centre_1, spread, minority=0.11):
    """Labels with ~11 % class 0 (both classes present) and logit-normal scores."""
    labels = (rng.random(n) >= minority).astype(int)
    labels[:2], labels[2:4] = 0, 1
    logits = np.where(labels == 1, rng.normal(centre_1, spread, n), rng.normal(centre_0, spread, n))
    return labels, 1.0 / (1.0 + np.exp(-logits))


@st.composite
def labels_and_predictions(draw):
    n = draw(st.integers(2, 60))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n))
    predictions = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    return np.array(labels), np.array(predictions)


@st.composite
def labels_and_scores(draw):
    n = draw(st.integers(2, 40))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < n))
    # Few distinct values so ties between scores are common.
    scores = draw(st.lists(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5001, 0.7, 1.0]), min_size=n, max_size=n))
    return np.array(labels), np.array(scores)


@settings(deadline=None)  # timing under a loaded CI box is not what is tested
@given(labels_and_predictions())
def test_hter_is_one_minus_balanced_accuracy(case):
    labels, predictions = case
    assert hter(labels, predictions) == pytest.approx(1 - balanced_accuracy_score(labels, predictions))


def test_recalls_by_hand():
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 1]
    predicted = [0, 0, 0, 1, 1, 1, 0, 0, 1]
    assert recalls(labels, predicted) == pytest.approx((3 / 4, 3 / 5))
    assert hter(labels, predicted) == pytest.approx((1 / 4 + 2 / 5) / 2)


@pytest.mark.parametrize("missing", [0, 1])
def test_missing_class_is_rejected(missing):
    labels = [1 - missing] * 5
    with pytest.raises(ValueError, match=f"no samples of class {missing}"):
        hter(labels, labels)
    with pytest.raises(ValueError, match="undefined"):
        hter_optimal_threshold(labels, [0.3] * 5)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="only 0 and 1"):
        hter([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="3 values"):
        hter([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        hter_optimal_threshold([0, 1], [0.2, np.nan])
    with pytest.raises(ValueError, match="not one of"):
        choose_threshold([0, 1], [0.2, 0.8], method="best")


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
    return min(hter(labels, (scores >= t).astype(int)) for t in candidates)


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
    assert hter(labels, (scores >= threshold).astype(int)) == pytest.approx(best)


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


def test_classification_report_keys_and_json():
    labels, scores = labelled_scores(np.random.default_rng(6), 400, 0.0, 2.0, 1.0)
    report = classification_report(labels, scores, 0.6)
    assert set(report) == {
        "hter", "recall_0", "recall_1", "balanced_accuracy", "auc", "eer",
        "confusion", "n", "n_class_0", "n_class_1", "threshold",
    }
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert np.sum(report["confusion"]) == report["n"] == 400
    assert report["n_class_0"] + report["n_class_1"] == 400
    assert report["hter"] == pytest.approx(hter(labels, (scores >= 0.6).astype(int)))
    assert report["balanced_accuracy"] == pytest.approx(1 - report["hter"])


def test_classification_report_confusion_layout():
    report = classification_report([0, 0, 0, 1, 1], [0.1, 0.2, 0.9, 0.3, 0.8], 0.5)
    assert report["confusion"] == [[2, 1], [1, 1]]


def test_classification_report_on_separable_scores():
    labels = np.array([0] * 10 + [1] * 90)
    scores = np.where(labels == 1, 0.9, 0.2) + np.linspace(0, 0.05, 100)
    report = classification_report(labels, scores, 0.5)
    assert report["auc"] == 1.0
    assert report["eer"] == pytest.approx(0.0, abs=1e-12)
    assert report["hter"] == 0.0


def test_classification_report_on_random_scores():
    rng = np.random.default_rng(8)
    labels = (rng.random(20_000) > 0.5).astype(int)
    report = classification_report(labels, rng.random(20_000), 0.5)
    assert report["eer"] == pytest.approx(0.5, abs=0.02)
    assert report["auc"] == pytest.approx(0.5, abs=0.02)


def test_eer_is_interpolated_where_error_rates_cross():
    # ROC corners (0, 0), (0, .5), (.5, .5), (.5, 1), (1, 1): FPR = FNR = 0.5 on
    # the flat segment, which interpolation must find exactly.
    report = classification_report([0, 0, 1, 1], [0.1, 0.6, 0.5, 0.9], 0.5)
    assert report["eer"] == pytest.approx(0.5)


@pytest.mark.parametrize("max_points", [2, 50, 200])
def test_roc_points_are_thinned_and_keep_both_ends(max_points):
    labels, scores = labelled_scores(np.random.default_rng(9), 3000, 0.0, 1.5, 1.0)
    rows = roc_points(labels, scores, max_points=max_points)
    assert 2 <= len(rows) <= max_points
    assert (rows[0]["fpr"], rows[0]["tpr"]) == (0.0, 0.0)
    assert (rows[-1]["fpr"], rows[-1]["tpr"]) == (1.0, 1.0)
    fpr = [row["fpr"] for row in rows]
    assert fpr == sorted(fpr)
    json.dumps(rows, allow_nan=False)


def test_roc_points_first_threshold_calls_nothing_1():
    scores = np.array([0.2, 0.4, 0.7, 1.0])
    rows = roc_points([0, 1, 0, 1], scores)
    assert rows[0]["threshold"] > scores.max()
    assert np.isfinite(rows[0]["threshold"])


def test_confusion_rows_one_per_sample_with_class_names():
    rows = confusion_rows([0, 1, 1], [1, 1, 0])
    assert rows == [
        {"actual": CLASS_NAMES[0], "predicted": CLASS_NAMES[1]},
        {"actual": CLASS_NAMES[1], "predicted": CLASS_NAMES[1]},
        {"actual": CLASS_NAMES[1], "predicted": CLASS_NAMES[0]},
    ]


def test_most_confident_errors_are_the_farthest_from_the_threshold():
    labels = [0, 0, 1, 1, 0, 1]
    # Errors 0 and 2 are 0.5 from the threshold, 1 and 3 are 0.125 (exact in binary).
    scores = [1.0, 0.625, 0.0, 0.375, 0.2, 0.9]
    assert most_confident_errors(labels, scores, 0.5, k=3).tolist() == [0, 2, 1]
    assert most_confident_errors([0, 1], [0.1, 0.9], 0.5, k=16).tolist() == []


def test_robust_falls_back_when_too_few_out_of_bag_checks():
    # With one accessory face every resample draws it, so none is left out of bag.
    labels = [0] + [1] * 9
    scores = [0.9] + [0.95] * 9
    choice = choose_threshold(labels, scores)
    assert choice["threshold"] == 0.5 and choice["n_oob_evaluations"] == 0
    assert choice["oob_gain_mean"] is None
    json.dumps(choice, allow_nan=False)
