"""Out-of-sample scores for every labelled face: each face scored by models that never saw it.

The train faces are split into k stratified folds (facecls.data.folds) and a cheap model trained
per fold (facecls.training.cross_validation), as the variants are, but with the audit's own folds
and recipe. Test faces never train any model (their labels stay out of every choice, the audit's
included): each of them gets the mean score of the k models.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from facecls.data.folds import assign_folds
from facecls.data.prepared import LabelledSet
from facecls.data.split import TRAIN
from facecls.device import pick_device
from facecls.errors import FaceclsError
from facecls.models.inference import predict_scores
from facecls.models.precision import resolve_precision
from facecls.training.cross_validation import clear, train_folds

WORK_DIR = Path(".cache") / "audit"  # the folds' models: scratch, the scores are what the audit keeps


def out_of_sample_scores(data: LabelledSet, config: dict, folds: int, seed: int,
                         work_dir: Path = WORK_DIR) -> tuple[np.ndarray, float]:
    """P(label 1) for every labelled face from models that never trained on it, and the CPU
    seconds this took (this process, every thread)."""
    started = time.process_time()
    pool = data.part == TRAIN
    smallest = min(int((data.labels[pool] == c).sum()) for c in (0, 1))
    if smallest < 2:
        raise FaceclsError(f"audit: {smallest} face(s) of one class outside the test part: too few to audit")
    fold = assign_folds(data.labels, data.part, min(folds, smallest), seed)
    trained = train_folds({**config, "variant": "audit"}, data, fold, work_dir, None)
    scores = np.zeros(len(data.labels), dtype=np.float64)
    scores[trained.oof.rows] = trained.oof.scores
    test = np.flatnonzero(~pool)
    if test.size:
        device = pick_device(config["device"])
        precision = resolve_precision(config["precision"], [config["arch"]], "score", device)
        scores[test] = np.mean([predict_scores(model.to(device), data.images[test], device, tta=True,
                                               precision=precision) for model in trained.models], axis=0)
    clear(work_dir)
    return scores.astype(np.float32), time.process_time() - started
