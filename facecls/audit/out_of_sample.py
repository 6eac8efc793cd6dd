"""Out-of-sample scores for every labelled face: each face scored by models that never saw it.

The train and tune faces are split into k stratified folds; the model of fold j trains on the
other folds and scores fold j. Test faces never train any model (their labels stay out of every
choice, the audit's included): each of them gets the mean score of the k models.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from facecls.data.prepared import LabelledSet
from facecls.data.split import TEST, TRAIN
from facecls.device import pick_device
from facecls.errors import FaceclsError
from facecls.models.files import load_model
from facecls.models.inference import predict_scores
from facecls.models.precision import resolve_precision
from facecls.training.loop import train_variant

WORK_DIR = Path(".cache") / "audit"  # the folds' models: scratch, the scores are what the audit keeps


def out_of_sample_scores(data: LabelledSet, config: dict, folds: int, seed: int,
                         work_dir: Path = WORK_DIR) -> tuple[np.ndarray, float]:
    """P(label 1) for every labelled face from models that never trained on it, and the CPU
    seconds this took (this process, every thread)."""
    started = time.process_time()
    pool = np.flatnonzero(data.part != TEST)
    smallest = min(int((data.labels[pool] == c).sum()) for c in (0, 1))
    if smallest < 2:
        raise FaceclsError(f"audit: {smallest} face(s) of one class outside the test part: too few to audit")
    folds = min(folds, smallest)
    device = pick_device(config["device"])
    precision = resolve_precision(config["precision"], [config["arch"]], "score", device)
    scores = np.zeros(len(data.labels), dtype=np.float64)
    test = np.flatnonzero(data.part == TEST)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (fit, held_out) in enumerate(splitter.split(pool, data.labels[pool])):
        part = np.full(len(data.labels), TEST, dtype=np.uint8)
        part[pool[fit]] = TRAIN
        model_path = work_dir / f"fold{k}.pt"
        print(f"audit: fold {k + 1}/{folds}, training on {fit.size} faces", file=sys.stderr)
        train_variant({**config, "variant": f"audit-fold{k}"}, LabelledSet(data.images, data.labels, part),
                      model_path, None, work_dir / f"resume-fold{k}.pt")
        model, _ = load_model(model_path)
        model.to(device)
        scores[pool[held_out]] = predict_scores(model, data.images[pool[held_out]], device, tta=True,
                                                precision=precision)
        if test.size:
            scores[test] += predict_scores(model, data.images[test], device, tta=True, precision=precision) / folds
        model_path.unlink()
    return scores.astype(np.float32), time.process_time() - started
