"""HTER and the rates behind it: one HTER, scikit-learn's numbers, report and plot data."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score

from facecls.evaluation.rates import (
    CLASS_NAMES,
    classification_report,
    confusion_rows,
    hter,
    hter_interval,
    labels_at,
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
        classification_report(labels, [0.3] * 5, 0.5)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="only 0 and 1"):
        hter([0, 1, 2], [0, 1, 1])
    with pytest.raises(ValueError, match="3 values"):
        hter([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="finite"):
        classification_report([0, 1], [0.2, np.nan], 0.5)


def test_classification_report_keys_and_json():
    labels, scores = labelled_scores(np.random.default_rng(6), 400, 0.0, 2.0, 1.0)
    report = classification_report(labels, scores, 0.6)
    assert set(report) == {
        "hter", "recall_0", "recall_1", "auc", "eer", "confusion", "n", "n_class_0", "threshold",
    }
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert np.sum(report["confusion"]) == report["n"] == 400
    assert report["n_class_0"] == int((labels == 0).sum())
    assert report["hter"] == pytest.approx(hter(labels, labels_at(scores, 0.6)))


def test_labels_at_calls_a_score_equal_to_the_threshold_1():
    assert labels_at([0.2, 0.5, 0.7], 0.5).tolist() == [0, 1, 1]
    assert labels_at(np.array([0.5]), 0.5000001).tolist() == [0]


def test_recalls_and_auc_agree_with_hand_counts_and_the_rank_statistic():
    """scikit-learn gives the numbers; check them against what they mean on random data."""
    rng = np.random.default_rng(11)
    labels, scores = labelled_scores(rng, 700, 0.0, 1.0, 1.5)
    predicted = labels_at(scores, 0.55)
    recall_0, recall_1 = recalls(labels, predicted)
    assert recall_0 == np.mean(predicted[labels == 0] == 0) and recall_1 == np.mean(predicted[labels == 1] == 1)
    # AUC = P(score of a random 1 > score of a random 0), ties counted half.
    diff = scores[labels == 1][:, None] - scores[labels == 0][None, :]
    auc = (np.sum(diff > 0) + 0.5 * np.sum(diff == 0)) / diff.size
    assert classification_report(labels, scores, 0.55)["auc"] == pytest.approx(auc, abs=1e-12)


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


def test_the_bootstrap_interval_matches_the_binomial_spread_of_a_known_case():
    """100 accessory faces with 20 errors and 900 others with 90: HTER 0.15, and each class's error
    rate varies over resamples as a binomial proportion, so the interval is about HTER +/- 1.96 sd
    with sd = sqrt(0.2 * 0.8 / 100 + 0.1 * 0.9 / 900) / 2."""
    labels = np.array([0] * 100 + [1] * 900)
    predicted = labels.copy()
    predicted[:20], predicted[100:190] = 1, 0
    low, high = hter_interval(labels, predicted, n_boot=20_000, seed=1)
    sd = np.sqrt(0.2 * 0.8 / 100 + 0.1 * 0.9 / 900) / 2
    assert hter(labels, predicted) == pytest.approx(0.15)
    assert low == pytest.approx(0.15 - 1.96 * sd, abs=0.004) and high == pytest.approx(0.15 + 1.96 * sd, abs=0.004)
    assert hter_interval(labels, predicted, n_boot=20_000, seed=1) == [low, high]  # seeded


def test_the_bootstrap_interval_agrees_with_resampling_the_faces():
    """Drawing binomial error counts is the stratified bootstrap: resampling faces gives the same interval."""
    rng = np.random.default_rng(3)
    labels = np.array([0] * 30 + [1] * 270)
    predicted = np.where(rng.random(300) < np.where(labels == 0, 0.25, 0.08), 1 - labels, labels)
    rows = [np.flatnonzero(labels == c) for c in (0, 1)]
    draws = []
    for _ in range(4000):
        picked = np.concatenate([rng.choice(r, r.size) for r in rows])
        draws.append(hter(labels[picked], predicted[picked]))
    low, high = hter_interval(labels, predicted)
    assert low == pytest.approx(np.quantile(draws, 0.025), abs=0.01)
    assert high == pytest.approx(np.quantile(draws, 0.975), abs=0.01)


def test_no_errors_give_a_zero_width_interval():
    assert hter_interval([0, 0, 1, 1], [0, 0, 1, 1]) == [0.0, 0.0]
