"""The three parts of the labelled images: *train* to fit, *tune* to choose on (early
stopping, thresholds, the variant), *test* to report on, once per variant after every
choice. Stratified, so each part keeps the classes' proportions, and seeded."""

from __future__ import annotations

import numpy as np

from facecls.params import check, get, is_int, is_number

PARTS = ("train", "tune", "test")  # a row's part is its index here
TRAIN, TUNE, TEST = range(len(PARTS))
# In no part: a train face that training leaves out (train.label_issues: drop). Never written to disk.
LEFT_OUT = 255


def fold_count(test_fraction: float) -> int:
    """How many folds have disjoint test parts: 10 at a test fraction of 0.1."""
    return max(int(1 / test_fraction + 1e-9), 1)


def split_settings(params: dict, source: str = "params.yaml") -> tuple[float, float, int, int]:
    """(split.tune_fraction, split.test_fraction, split.seed, split.fold), checked."""
    tune, test, seed, fold = (get(params, f"split.{key}", source)
                              for key in ("tune_fraction", "test_fraction", "seed", "fold"))
    for key, value in (("tune_fraction", tune), ("test_fraction", test)):
        check(is_number(value) and 0 < value < 1, source, f"split.{key}", "a number in (0, 1)", value)
    check(tune + test < 1, source, "split.tune_fraction + split.test_fraction", "below 1 (rows left to train on)",
          tune + test)
    check(is_int(seed), source, "split.seed", "an integer", seed)
    folds = fold_count(test)
    check(is_int(fold) and 0 <= fold < folds, source, "split.fold",
          f"an integer from 0 to {folds - 1} (folds with disjoint test parts at this test_fraction)", fold)
    return tune, test, seed, fold


def stratified_split(labels: np.ndarray, tune_fraction: float, test_fraction: float, seed: int,
                     fold: int = 0) -> np.ndarray:
    """Each row's part (an index into PARTS), the same fractions of each class in each part;
    ``fold`` rotates the parts along each class's seeded order (module docstring).

    A class with three or more images gives at least one to each part, so that tune and
    test can measure both recalls; the rest of the rounding goes to train.
    """
    rng = np.random.default_rng(seed)
    part = np.full(len(labels), TRAIN, dtype=np.uint8)
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test, n_tune = (int(round(len(members) * f)) for f in (test_fraction, tune_fraction))
        if len(members) >= 3:
            n_test = min(max(n_test, 1), len(members) - 2)
            n_tune = min(max(n_tune, 1), len(members) - 1 - n_test)
        members = np.roll(members, -fold * n_test)
        part[members[:n_test]] = TEST
        part[members[n_test:n_test + n_tune]] = TUNE
    return part


def part_counts(labels: np.ndarray, part: np.ndarray) -> dict:
    """{part: {"n", "class_0"}}: how many images each part holds, and how many wear an accessory."""
    return {name: {"n": int((part == code).sum()), "class_0": int(((part == code) & (labels == 0)).sum())}
            for code, name in enumerate(PARTS)}
