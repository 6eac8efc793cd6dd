"""Cross-validation folds over the train part: stratified, seeded, the test part in none, and what
each fold model may see."""

import numpy as np
import pytest

from facecls.data.folds import NO_FOLD, assign_folds, cv_settings, fold_part
from facecls.data.split import LEFT_OUT, TEST, TRAIN, TUNE, stratified_split
from facecls.errors import FaceclsError

LABELS = np.array([0] * 100 + [1] * 900)
PART = stratified_split(LABELS, 0.1, seed=0)


def test_every_train_face_is_in_one_fold_and_test_faces_in_none():
    fold = assign_folds(LABELS, PART, 5, seed=0)
    assert set(fold[PART == TEST]) == {NO_FOLD}
    assert set(fold[PART == TRAIN]) == {0, 1, 2, 3, 4}
    for k in range(5):  # stratified: 18 of the 90 accessory train faces in each
        assert ((fold == k) & (LABELS == 0)).sum() == 18 and (fold == k).sum() == 180


def test_folds_are_seeded():
    assert np.array_equal(assign_folds(LABELS, PART, 5, 3), assign_folds(LABELS, PART, 5, 3))
    assert not np.array_equal(assign_folds(LABELS, PART, 5, 3), assign_folds(LABELS, PART, 5, 4))


def test_a_fold_model_never_sees_its_own_fold_or_the_test_part():
    fold = assign_folds(LABELS, PART, 5, seed=0)
    part = fold_part(LABELS, fold, 2, early_stopping=0, seed=0)
    assert set(part[fold == 2]) == {LEFT_OUT} and set(part[PART == TEST]) == {LEFT_OUT}
    assert set(part[(fold != 2) & (fold != NO_FOLD)]) == {TRAIN}


def test_early_stopping_sets_a_stratified_share_of_its_own_training_faces_aside():
    fold = assign_folds(LABELS, PART, 5, seed=0)
    part = fold_part(LABELS, fold, 2, early_stopping=0.25, seed=0)
    others = (fold != 2) & (fold != NO_FOLD)
    assert set(part[others]) == {TRAIN, TUNE} and (part == TUNE).sum() == 180
    assert ((part == TUNE) & (LABELS == 0)).sum() == 18
    assert set(part[fold == 2]) == {LEFT_OUT}, "never the faces it scores out of fold"


def test_more_folds_than_faces_of_a_class_are_refused():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    with pytest.raises(FaceclsError, match="cv.folds: 4 folds need at least 4 faces of each class in the train part"):
        assign_folds(labels, np.full(10, TRAIN, np.uint8), 4, 0)


@pytest.mark.parametrize(("section", "problem"), [
    ({"folds": 1, "seed": 0}, "cv.folds must be an integer >= 2, got 1"),
    ({"folds": 5, "seed": "x"}, "cv.seed must be an integer"),
    ({"folds": 5, "seed": 0, "fold": 1}, "unknown key cv.fold"),
    ({"folds": 5}, "missing key cv.seed"),
])
def test_the_cv_section_is_checked(section, problem):
    with pytest.raises(FaceclsError, match=problem):
        cv_settings({"cv": section})
