"""Label unlabelled images with a trained model at its threshold, one 0/1 line per image; and,
with ``predict.refit``, train the chosen variant once more on every labelled image first."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facecls.atomic import write_text
from facecls.data.labels import format_labels
from facecls.data.prepared import LabelledSet, load_unlabelled
from facecls.data.split import TRAIN
from facecls.device import device_setting, pick_device
from facecls.evaluation.choice import chosen_variant, predict_variant, read_metrics, scored_names
from facecls.evaluation.evaluate import evaluate_settings
from facecls.evaluation.rates import labels_at
from facecls.models.ensemble import NAME as ENSEMBLE
from facecls.models.ensemble import ensemble_members
from facecls.models.files import load_ensemble, load_model, model_file, save_ensemble
from facecls.models.inference import predict_scores
from facecls.models.precision import precision_setting, scoring_precision
from facecls.models.pretrained import start_record
from facecls.params import check, get
from facecls.training.config import variant_config
from facecls.training.loop import train_variant
from facecls.training.resume import resume_path

REFIT_DIR = Path(".cache") / "refit"  # scratch: the refit model ends up in results/model.pt


def refit_setting(params: dict, source: str = "params.yaml") -> bool:
    refit = get(params, "predict.refit", source)
    check(isinstance(refit, bool), source, "predict.refit", "true or false", refit)
    return refit


def label_images(model: torch.nn.Module, images: np.ndarray, threshold: float, *, tta: bool,
                 device: torch.device, precision: str = "fp32") -> np.ndarray:
    """0/1 per image; ``precision`` resolved (fp32 or bf16)."""
    return labels_at(predict_scores(model, images, device, tta=tta, precision=precision), threshold)


def write_label_file(path, labels: np.ndarray) -> None:
    """One 0/1 per line; written atomically so a failure keeps any previous file."""
    write_text(path, format_labels(labels))


def refit(params: dict, variant: str, data: LabelledSet) -> tuple[torch.nn.Module, dict]:
    """``variant`` (each member, for the ensemble) trained again, on train + tune + test, for the
    number of epochs early stopping chose on tune; its tune threshold is then applied as it is."""
    if variant == ENSEMBLE:
        for member in ensemble_members(params):
            refit(params, member, data)
        model, info = load_ensemble(ensemble_members(params), models_dir=REFIT_DIR)
        save_ensemble(REFIT_DIR / f"{ENSEMBLE}.pt", model, info)
        return model, info
    _, trained = load_model(model_file(variant), expect_variant=variant)
    epochs = trained["summary"]["best_epoch"]
    config = {**variant_config(params, variant), "start": start_record(variant), "epochs": epochs}
    everything = LabelledSet(data.images, data.labels, np.full_like(data.part, TRAIN))
    train_variant(config, everything, REFIT_DIR / f"{variant}.pt", None, resume_path(f"refit-{variant}"))
    model, info = load_model(REFIT_DIR / f"{variant}.pt", expect_variant=variant)
    info["summary"]["refit_of_epochs"] = epochs
    return model, info


def label_with_every_variant(params: dict) -> list[dict]:
    """``val_img`` labelled by each scored variant of the finished run in the working directory
    (ensemble included), each with its own model file and threshold and the run's TTA setting,
    as the predict stage would apply it without refit: [{variant, chosen, metrics, labels}]."""
    _, tta = evaluate_settings(params)
    choice, device = predict_variant(params), pick_device(device_setting(params))
    metrics = read_metrics("results/metrics", scored_names(params))
    images = load_unlabelled("data/prepared").images
    chosen = chosen_variant(choice, metrics)
    labelled = []
    for variant, m in metrics.items():
        model, info = load_model(model_file(variant), expect_variant=variant)
        labels = label_images(model.to(device), images, m["threshold"], tta=tta, device=device,
                              precision=scoring_precision(precision_setting(params, variant), info["config"], device))
        labelled.append({"variant": variant, "chosen": variant == chosen, "metrics": m, "labels": labels})
    return labelled
