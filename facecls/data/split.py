"""The two parts of the labelled images: *test*, held out from everything and scored once per
variant after every choice, and *train*, the rest, which cross-validation divides into folds
(facecls.data.folds) to train, to score out of fold and to choose on. Stratified, so each part
keeps the classes' proportions, and seeded."""

from __future__ import annotations

import numpy as np

from facecls.params import check, get, is_int, is_number

# A row's part is its index here. TUNE never reaches disk: it is the share of a fold model's own
# training faces that early stopping reads (train.early_stopping), set aside in memory.
PARTS = ("train", "tune", "test")
TRAIN, TUNE, TEST = range(len(PARTS))
# In no part: a face a fold model neither trains on nor reads (its held-out fold, a face that
# train.label_issues drops). Never written to disk.
LEFT_OUT = 255


def fold_count(test_fraction: float) -> int:
    """How many test folds are disjoint: 10 at a test fraction of 0.1."""
    return max(int(1 / test_fraction + 1e-9), 1)


def split_settings(params: dict, source: str = "params.yaml") -> tuple[float, int, int]:
    """(split.test_fraction, split.seed, split.fold), checked."""
    test, seed, fold = (get(params, f"split.{key}", source) for key in ("test_fraction", "seed", "fold"))
    check(is_number(test) and 0 < test < 1, source, "split.test_fraction", "a number in (0, 1)", test)
    check(is_int(seed), source, "split.seed", "an integer", seed)
    folds = fold_count(test)
    check(is_int(fold) and 0 <= fold < folds, source, "split.fold",
          f"an integer from 0 to {folds - 1} (folds with disjoint test parts at this test_fraction)", fold)
    return test, seed, fold


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int, fold: int = 0) -> np.ndarray:
    """Each row's part (TRAIN or TEST), the same fraction of each class in test; ``fold`` rotates
    the test part along each class's seeded order, so folds 0 .. fold_count - 1 are disjoint.

    A class with three or more images gives at least one to test, and keeps at least two for
    train (the cross-validation folds need both classes); the rest of the rounding goes to train.
    """
    rng = np.random.default_rng(seed)
    part = np.full(len(labels), TRAIN, dtype=np.uint8)
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(round(len(members) * test_fraction))
        if len(members) >= 3:
            n_test = min(max(n_test, 1), len(members) - 2)
        members = np.roll(members, -fold * n_test)
        part[members[:n_test]] = TEST
    return part


def part_counts(labels: np.ndarray, part: np.ndarray, parts: tuple[int, ...] = (TRAIN, TEST)) -> dict:
    """{part: {"n", "class_0"}}: how many images each part holds, and how many wear an accessory."""
    return {PARTS[code]: {"n": int((part == code).sum()), "class_0": int(((part == code) & (labels == 0)).sum())}
            for code in parts}
