"""Cross-validation over the train part: its faces split into K stratified, seeded folds; the
model of fold k trains on the other folds and scores fold k, so every train face gets an
out-of-fold score from a model that never saw it. The test part is in no fold.

The folds are drawn here, from the labels and parts of the prepared set, not by the index stage:
a change of ``cv.folds`` or ``cv.seed`` reruns training, never the decoding of the archive.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from facecls.data.split import LEFT_OUT, TRAIN, TUNE
from facecls.errors import FaceclsError
from facecls.params import check, check_known_keys, get, is_int

NO_FOLD = -1  # a test face: in no fold
KEYS = ("folds", "seed")


def cv_settings(params: dict, source: str = "params.yaml") -> tuple[int, int]:
    """(cv.folds, cv.seed), checked."""
    section = get(params, "cv", source)
    check(isinstance(section, dict), source, "cv", "a mapping", section)
    check_known_keys(section, KEYS, source, "cv")
    folds, seed = (get(params, f"cv.{key}", source) for key in KEYS)
    check(is_int(folds) and folds >= 2, source, "cv.folds", "an integer >= 2", folds)
    check(is_int(seed), source, "cv.seed", "an integer", seed)
    return folds, seed


def assign_folds(labels: np.ndarray, part: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's fold (0 .. folds - 1), NO_FOLD for rows outside the train part; stratified by
    class and seeded."""
    pool = np.flatnonzero(part == TRAIN)
    smallest = min(int((labels[pool] == c).sum()) for c in (0, 1))
    if smallest < folds:
        raise FaceclsError(f"cv.folds: {folds} folds need at least {folds} faces of each class in the train part, "
                           f"which holds {smallest} of one class (lower cv.folds, or use a bigger archive)")
    fold = np.full(len(labels), NO_FOLD, dtype=np.int8)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(pool, labels[pool])):
        fold[pool[held_out]] = k
    return fold


def fold_part(labels: np.ndarray, fold: np.ndarray, k: int, early_stopping: float, seed: int) -> np.ndarray:
    """The parts that fold k's model sees: the other folds' faces are TRAIN, but for a stratified
    share ``early_stopping`` of them set aside as TUNE (what early stopping reads); fold k and
    the test part are LEFT_OUT, so no face this model scores out of fold steers its training."""
    part = np.full(len(labels), LEFT_OUT, dtype=np.uint8)
    train = np.flatnonzero((fold != NO_FOLD) & (fold != k))
    part[train] = TRAIN
    if early_stopping > 0:
        _, tune = train_test_split(train, test_size=early_stopping, stratify=labels[train], random_state=seed + k)
        part[tune] = TUNE
    return part
