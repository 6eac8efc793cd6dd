"""Label the unlabelled images: the chosen model, its threshold, one line per image."""

from __future__ import annotations

import numpy as np
import torch

from facecls.atomic import write_text
from facecls.inference import predict_scores
from facecls.labels import format_labels


def apply_threshold(scores: np.ndarray, threshold: float) -> np.ndarray:
    return (scores >= threshold).astype(np.uint8)


def label_images(model: torch.nn.Module, images: np.ndarray, threshold: float, *, tta: bool,
                 device: torch.device) -> np.ndarray:
    return apply_threshold(predict_scores(model, images, device, tta=tta), threshold)


def write_label_file(path, labels: np.ndarray) -> None:
    """One 0/1 per line; written atomically so a failure keeps any previous file."""
    write_text(path, format_labels(labels))
