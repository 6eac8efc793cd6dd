"""Out-of-fold figures: each fold labelled at a threshold chosen on the other folds' scores alone."""

import numpy as np
import pytest

from facecls.errors import FaceclsError
from facecls.evaluation.out_of_fold import cross_fitted_labels, out_of_fold, read_out_of_fold, threshold_groups
from facecls.evaluation.thresholds import choose_threshold


def scored(n=400, folds=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) > 0.2).astype(np.uint8)
    scores = np.clip(labels * 0.5 + rng.normal(0.25, 0.2, n), 0, 1)
    return out_of_fold(np.arange(n), np.arange(n) % folds, scores), labels


def test_a_fold_is_labelled_at_the_threshold_of_the_others():
    oof, labels = scored()
    predicted, thresholds = cross_fitted_labels(oof, labels, "optimal")
    for k in range(4):
        others = oof.fold != k
        assert thresholds[k] == choose_threshold(labels[others], oof.scores[others], "optimal")["threshold"]
        assert np.array_equal(predicted[oof.fold == k], (oof.scores[oof.fold == k] >= thresholds[k]).astype(np.uint8))


def test_a_fold_own_scores_never_move_its_threshold():
    oof, labels = scored()
    _, before = cross_fitted_labels(oof, labels, "optimal")
    shifted = oof.scores.copy()
    shifted[oof.fold == 1] = np.clip(shifted[oof.fold == 1] + 0.3, 0, 1)
    _, after = cross_fitted_labels(out_of_fold(oof.rows, oof.fold, shifted), labels, "optimal")
    assert after[1] == before[1] and after[0] != before[0]


def test_one_trained_fold_is_cut_into_two_stratified_halves():
    oof, labels = scored(folds=1)
    groups = threshold_groups(oof, labels)
    assert set(groups) == {0, 1}
    for cls in (0, 1):
        assert abs(int(((groups == 0) & (labels == cls)).sum()) - int(((groups == 1) & (labels == cls)).sum())) <= 1
    assert len(cross_fitted_labels(oof, labels, "robust")[1]) == 2


def test_a_model_file_record_round_trips_and_is_checked():
    oof, _ = scored(n=10, folds=2)
    back = read_out_of_fold({"out_of_fold": oof.record()}, 10, "m.pt")
    assert np.array_equal(back.rows, oof.rows) and back.scores == pytest.approx(oof.scores)
    with pytest.raises(FaceclsError, match="m.pt: holds no out-of-fold scores"):
        read_out_of_fold({}, 10, "m.pt")
    with pytest.raises(FaceclsError, match="m.pt: out-of-fold scores of faces the prepared set does not have"):
        read_out_of_fold({"out_of_fold": oof.record()}, 5, "m.pt")
