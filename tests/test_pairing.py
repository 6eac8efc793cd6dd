"""Two recipes compared on the same faces over replicates: the paired difference and its interval."""

import numpy as np
import pytest

from facecls.errors import FaceclsError
from facecls.evaluation.pairing import ScoredFaces, paired_difference, read_scored_faces, verdict


def faces(predicted_wrong_0: int, predicted_wrong_1: int, n0: int = 60, n1: int = 540, offset: int = 0) -> ScoredFaces:
    labels = np.array([0] * n0 + [1] * n1)
    predicted = labels.copy()
    predicted[:predicted_wrong_0] = 1
    predicted[n0:n0 + predicted_wrong_1] = 0
    return ScoredFaces(np.arange(n0 + n1) + offset, labels, predicted)


def test_a_recipe_against_itself_differs_by_nothing():
    folds = {k: faces(6, 30) for k in range(3)}
    result = paired_difference(folds, folds)
    assert result["difference"] == 0 and result["ci95"] == [0.0, 0.0] and verdict(result["ci95"]) == "within noise"
    assert result["hter"] == pytest.approx((6 / 60 + 30 / 540) / 2)


def test_fixing_errors_in_every_fold_is_better_beyond_noise():
    baseline = {k: faces(12, 40) for k in range(3)}
    candidate = {k: faces(4, 40) for k in range(3)}  # 8 of 60 accessory faces fewer wrong, each fold
    result = paired_difference(candidate, baseline)
    assert result["difference"] == pytest.approx(-8 / 60 / 2)
    assert result["ci95"][1] < 0 and verdict(result["ci95"]) == "better"
    assert result["replicates"] == [0, 1, 2]


def test_a_small_change_on_one_fold_is_within_noise_and_only_common_folds_count():
    baseline = {k: faces(10, 40) for k in range(3)}
    candidate = {0: faces(9, 40), 1: faces(10, 41), 5: faces(0, 0)}
    result = paired_difference(candidate, baseline)
    assert result["replicates"] == [0, 1] and verdict(result["ci95"]) == "within noise"
    assert result["ci95"][0] < result["difference"] < result["ci95"][1]


def test_different_test_faces_cannot_be_paired():
    with pytest.raises(FaceclsError, match="replicate 0: the two recipes were scored on different faces"):
        paired_difference({0: faces(1, 1, offset=1)}, {0: faces(1, 1)})
    with pytest.raises(FaceclsError, match="no replicate in common"):
        paired_difference({1: faces(1, 1)}, {0: faces(1, 1)})


def test_test_scores_files_are_read_and_checked():
    read = read_scored_faces("row,file,label,score,predicted\n4,a.jpg,1,0.9,1\n2,b.jpg,0,0.7,1\n", "x.csv")
    assert read.rows.tolist() == [2, 4] and read.labels.tolist() == [0, 1] and read.hter == 0.5
    with pytest.raises(FaceclsError, match="x.csv: not a scores file"):
        read_scored_faces("row,label\n1,0\n", "x.csv")
    with pytest.raises(FaceclsError, match="x.csv: needs 0/1 labels"):
        read_scored_faces("row,file,label,score,predicted\n1,a,1,0.5,1\n", "x.csv")


def test_out_of_fold_files_with_their_fold_column_read_the_same():
    read = read_scored_faces("row,file,label,fold,score,predicted\n4,a.jpg,1,0,0.9,1\n2,b.jpg,0,1,0.7,1\n", "o.csv")
    assert read.rows.tolist() == [2, 4] and read.predicted.tolist() == [1, 1]


def test_the_interval_is_the_bootstrap_of_resampled_faces():
    """Drawing the counts of disagreements gives the interval that resampling every face gives."""
    rng = np.random.default_rng(1)
    baseline, candidate = faces(10, 40), faces(10, 40)
    candidate.predicted[rng.choice(600, 25, replace=False)] ^= 1  # 25 disagreements, either way
    result = paired_difference({0: candidate}, {0: baseline}, n_boot=20_000)
    by_face = np.zeros(20_000)
    for cls in (0, 1):
        mine = baseline.labels == cls
        delta = (candidate.predicted[mine] != cls).astype(int) - (baseline.predicted[mine] != cls).astype(int)
        by_face += delta[rng.integers(0, delta.size, (20_000, delta.size))].mean(axis=1) / 2
    assert result["ci95"] == pytest.approx(np.percentile(by_face, [2.5, 97.5]).tolist(), abs=0.002)
