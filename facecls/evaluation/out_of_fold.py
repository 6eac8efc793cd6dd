"""Out-of-fold scores: each train face's score from the fold model that never saw it, what every
choice rests on (the threshold, the variant), and the out-of-fold figure, honest because each
fold's threshold is chosen on the other folds' scores, never on the faces it labels.

A variant's model file carries its out-of-fold scores (``out_of_fold``: rows of the prepared set,
their fold, their score), so they cannot drift from the fold models that made them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from facecls.errors import FaceclsError
from facecls.evaluation.rates import labels_at
from facecls.evaluation.thresholds import choose_threshold


@dataclass(frozen=True)
class OutOfFold:
    rows: np.ndarray  # rows of the prepared set, ascending
    fold: np.ndarray  # each row's fold
    scores: np.ndarray  # P(label 1) from the model of that fold

    def record(self) -> dict:
        """What a model file holds: tensors, loadable with weights_only=True."""
        return {"rows": torch.from_numpy(self.rows.astype(np.int64)),
                "fold": torch.from_numpy(self.fold.astype(np.int64)),
                "scores": torch.from_numpy(self.scores.astype(np.float32))}


def out_of_fold(rows: np.ndarray, fold: np.ndarray, scores: np.ndarray) -> OutOfFold:
    order = np.argsort(rows, kind="stable")
    return OutOfFold(np.asarray(rows, np.int64)[order], np.asarray(fold, np.int64)[order],
                     np.asarray(scores, np.float32)[order])


def read_out_of_fold(info: dict, n_rows: int, source: str) -> OutOfFold:
    """The out-of-fold scores of a model file (``info`` as load_model returns it), checked against a
    prepared set of ``n_rows`` labelled faces."""
    record = info.get("out_of_fold")
    try:
        oof = out_of_fold(*(np.asarray(record[key]) for key in ("rows", "fold", "scores")))
    except (TypeError, KeyError):
        raise FaceclsError(f"{source}: holds no out-of-fold scores (written by an older train stage: "
                           "dvc repro)") from None
    if not (len(oof.rows) == len(oof.fold) == len(oof.scores)) or not len(oof.rows):
        raise FaceclsError(f"{source}: damaged out-of-fold scores")
    if oof.rows[-1] >= n_rows or oof.rows[0] < 0 or np.any(np.diff(oof.rows) == 0):
        raise FaceclsError(f"{source}: out-of-fold scores of faces the prepared set does not have "
                           "(trained on other data: dvc repro)")
    return oof


def mean_out_of_fold(parts: list[OutOfFold], names: list[str]) -> OutOfFold:
    """The mean score of several variants on the faces all of them scored out of fold; they must
    share the folds (one cv split), so each face's scores all come from models that never saw it."""
    common = parts[0].rows
    for part in parts[1:]:
        common = np.intersect1d(common, part.rows)
    if not common.size:
        raise FaceclsError(f"{', '.join(names)}: no face scored out of fold by every one of them")
    picked = [np.searchsorted(p.rows, common) for p in parts]
    folds = [p.fold[i] for p, i in zip(parts, picked)]
    for name, fold in zip(names[1:], folds[1:]):
        if not np.array_equal(fold, folds[0]):
            raise FaceclsError(f"{names[0]} and {name} were trained over different folds (cv.folds or cv.seed "
                               "changed between them): dvc repro")
    return OutOfFold(common, folds[0], np.mean([p.scores[i] for p, i in zip(parts, picked)], axis=0))


def threshold_groups(oof: OutOfFold, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """The groups whose thresholds are chosen on the others: the folds, or, where one fold model
    alone was trained, two stratified halves of its fold."""
    if np.unique(oof.fold).size >= 2:
        return oof.fold
    rng = np.random.default_rng(seed)
    group = np.zeros(len(labels), dtype=np.int64)
    for cls in (0, 1):
        members = rng.permutation(np.flatnonzero(labels == cls))
        group[members[::2]] = 1
    return group


def cross_fitted_labels(oof: OutOfFold, labels: np.ndarray, method: str) -> tuple[np.ndarray, list[float]]:
    """Each out-of-fold face labelled at a threshold chosen (by ``method``) on the other groups'
    scores only; returns (labels, each group's threshold, in the groups' order)."""
    groups = threshold_groups(oof, labels)
    predicted = np.empty(len(labels), dtype=np.uint8)
    thresholds = []
    for g in np.unique(groups):
        mine = groups == g
        others = ~mine
        if len(set(labels[others].tolist())) < 2:
            raise FaceclsError("out-of-fold scores: a fold's complement lacks a class; too few faces to "
                               "choose its threshold")
        thresholds.append(float(choose_threshold(labels[others], oof.scores[others], method)["threshold"]))
        predicted[mine] = labels_at(oof.scores[mine], thresholds[-1])
    return predicted, thresholds
