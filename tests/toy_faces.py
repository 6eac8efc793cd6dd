"""An easy toy data set (class 0 faces wear a dark band across the eyes), its training config, and a
look at the dtypes a model really computes in."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from sklearn.model_selection import train_test_split

from facecls.data.prepared import LabelledSet
from facecls.data.split import TRAIN, TUNE, stratified_split
from facecls.models.pretrained import RANDOM_START


def toy_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(labels)
    images = rng.integers(120, 220, size=(n, 64, 64, 3), dtype=np.uint8)
    band = labels == 0
    rows = rng.integers(18, 26, size=n)
    for i in np.flatnonzero(band):
        images[i, rows[i]:rows[i] + 8, 8:56] = rng.integers(0, 40)
    return images


def toy_set(n: int = 240, seed: int = 0, class_0: float = 0.25, tune: bool = True) -> LabelledSet:
    """Train and test parts, 80 / 20; with ``tune``, a quarter of train set aside as a tune part (what a
    fold model with early stopping sees)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) >= class_0).astype(np.uint8)
    labels[:4], labels[4:8] = 0, 1
    part = stratified_split(labels, 0.2, seed)
    if tune:
        train = np.flatnonzero(part == TRAIN)
        part[train_test_split(train, test_size=0.25, stratify=labels[train], random_state=seed)[1]] = TUNE
    return LabelledSet(toy_images(labels, seed), labels, part)


def toy_config(**overrides) -> dict:
    config = {
        "variant": "toy", "arch": "simplecnn", "mode": "full", "weights": "random", "weights_fallback": "random",
        "weighted": False, "pos_weight": None, "lr_factor": 1.0, "stem_stride": 1, "epochs": 3, "half_res_epochs": 0,
        "batch_size": 16, "lr": 0.003, "optimizer": "adamw", "weight_decay": 0.0, "schedule": "onecycle",
        "label_smoothing": 0.0, "early_stopping": 0, "patience": 5, "ema": 0, "fold_models": "all",
        "label_issues": "keep", "seed": 0, "device": "cpu", "precision": "auto", "threads": 1,
        "nproc": 1,
        "augment": {"flip": True, "shift": 0.0, "scale": 0.0, "color": 0.0}, "start": RANDOM_START,
    }
    config.update(overrides)
    return config


@contextmanager
def conv_output_dtypes():
    """The dtypes of every Conv2d output computed inside the block, by the module's mode (train or
    eval): what autocast really did, wherever the model was built."""
    seen = {"train": set(), "eval": set()}

    def hook(module, args, output):
        if isinstance(module, torch.nn.Conv2d):
            seen["train" if module.training else "eval"].add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()
