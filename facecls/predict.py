"""Label unlabelled images with a trained model at its threshold, one 0/1 line per image."""

from __future__ import annotations


import numpy as np
import torch

from facecls.atomic import write_text
from facecls.data.labels import format_labels
from facecls.data.prepared import load_unlabelled
from facecls.device import device_setting, pick_device
from facecls.evaluation.choice import chosen_variant, predict_variant, read_scored
from facecls.evaluation.evaluate import evaluate_settings
from facecls.evaluation.rates import labels_at
from facecls.models.files import load_model, model_file
from facecls.models.inference import predict_scores
from facecls.models.precision import precision_setting, scoring_precision


def label_images(model: torch.nn.Module, images: np.ndarray, threshold: float, *, tta: bool,
                 device: torch.device, precision: str = "fp32") -> np.ndarray:
    """0/1 per image; ``precision`` resolved (fp32 or bf16)."""
    return labels_at(predict_scores(model, images, device, tta=tta, precision=precision), threshold)


def write_label_file(path, labels: np.ndarray) -> None:
    """One 0/1 per line; written atomically so a failure keeps any previous file."""
    write_text(path, format_labels(labels))


def label_with_every_variant(params: dict) -> list[dict]:
    """``val_img`` labelled by each scored variant of the finished run in the working directory
    (ensemble included), each with its own model file and threshold and the run's TTA setting,
    as the predict stage would apply it: [{variant, chosen, metrics, labels}]."""
    _, tta = evaluate_settings(params)
    choice, device = predict_variant(params), pick_device(device_setting(params))
    metrics = read_scored("results/metrics", params)
    images = load_unlabelled("data/prepared").images
    chosen = chosen_variant(choice, metrics)
    labelled = []
    for variant, m in metrics.items():
        model, info = load_model(model_file(variant), expect_variant=variant)
        labels = label_images(model.to(device), images, m["threshold"], tta=tta, device=device,
                              precision=scoring_precision(precision_setting(params, variant), info["config"], device))
        labelled.append({"variant": variant, "chosen": variant == chosen, "metrics": m, "labels": labels})
    return labelled
