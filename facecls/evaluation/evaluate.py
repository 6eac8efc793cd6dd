"""Score one trained variant (the mean of its fold models, or an ensemble of variants): the
threshold chosen on its out-of-fold scores, then its two reported figures, each with its
bootstrap interval:

- out of fold: every train face labelled at a threshold chosen on the other folds' scores;
- test: the test part, scored once by the delivered model at the out-of-fold threshold.

Plus plot data and figures, and each face's score for `facecls grid` to pair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facecls.atomic import write_json, write_text
from facecls.data.prepared import LabelledSet
from facecls.data.split import TRAIN, part_counts
from facecls.device import pick_device
from facecls.evaluation.out_of_fold import OutOfFold, cross_fitted_labels, read_out_of_fold
from facecls.evaluation.pairing import OOF_SCORES, TEST_SCORES
from facecls.evaluation.plots import plot_confident_errors, plot_confusion, plot_roc, plot_training_curves
from facecls.evaluation.rates import (classification_report, confusion_rows, hter, hter_interval, labels_at, recalls,
                                      roc_points)
from facecls.evaluation.thresholds import METHODS, choose_threshold
from facecls.models.files import load_model
from facecls.models.inference import predict_scores, tta_setting
from facecls.models.precision import scoring_precision
from facecls.params import check_choice, get


def evaluate_settings(params: dict, source: str = "params.yaml") -> tuple[str, bool]:
    """(evaluate.threshold, predict.tta), checked: how every variant is scored."""
    method = str(get(params, "evaluate.threshold", source))
    check_choice(method, METHODS, source, "evaluate.threshold")
    return method, tta_setting(params, source)


def evaluate_variant(variant: str, model_path: Path, data: LabelledSet, *, tta: bool, threshold_method: str,
                     metrics_path: Path, out_dir: Path, device: str = "auto", precision: str = "auto") -> dict:
    model, info = load_model(model_path, expect_variant=variant)
    return evaluate_model(variant, model, info, data, read_out_of_fold(info, len(data.labels), str(model_path)),
                          tta=tta, threshold_method=threshold_method, metrics_path=metrics_path, out_dir=out_dir,
                          device=device, precision=precision)


def evaluate_model(variant: str, model, info: dict, data: LabelledSet, oof: OutOfFold, *, tta: bool,
                   threshold_method: str, metrics_path: Path, out_dir: Path, device: str = "auto",
                   precision: str = "auto") -> dict:
    """Score a loaded model and its out-of-fold scores ``oof``: the threshold and the out-of-fold
    figure from ``oof``, then the test figure at that threshold.

    ``info`` is what ``load_model`` returns beside the model: its ``config`` (for
    ``weights_used`` and the architectures), ``history`` and ``summary``.
    ``precision`` is the knob (auto, fp32, bf16), resolved here for this device and model.
    """
    if np.any(data.part[oof.rows] != TRAIN):
        raise ValueError(f"{variant}: out-of-fold scores of faces outside the train part")
    device = pick_device(device)
    score_precision = scoring_precision(precision, info["config"], device)
    model.to(device)
    oof_labels = data.labels[oof.rows]
    choice = choose_threshold(oof_labels, oof.scores, method=threshold_method)
    threshold = float(choice["threshold"])
    oof_predicted, fold_thresholds = cross_fitted_labels(oof, oof_labels, threshold_method)
    oof_recalls = recalls(oof_labels, oof_predicted)

    test = data.test_rows
    test_labels = data.labels[test]
    test_scores = predict_scores(model, data.images[test], device, tta=tta, precision=score_precision)
    report = classification_report(test_labels, test_scores, threshold)
    predicted = labels_at(test_scores, threshold)
    summary = info.get("summary", {})
    counts = part_counts(data.labels, data.part)
    metrics = {
        # Reported for the delivered model: the test part, scored once, at the out-of-fold threshold.
        "hter": report["hter"], "hter_ci95": hter_interval(test_labels, predicted),
        "recall_0": report["recall_0"], "recall_1": report["recall_1"], "auc": report["auc"],
        "threshold": threshold, "hter_at_0_5": classification_report(test_labels, test_scores, 0.5)["hter"],
        # Out of fold: each fold's faces at a threshold chosen on the other folds' scores.
        "oof_hter": hter(oof_labels, oof_predicted), "oof_hter_ci95": hter_interval(oof_labels, oof_predicted),
        "oof_recall_0": oof_recalls[0], "oof_recall_1": oof_recalls[1],
        "oof_auc": classification_report(oof_labels, oof.scores, threshold)["auc"],
        "oof_fold_thresholds": fold_thresholds,
        # One fold model alone on the test part, at the same threshold: what averaging them buys.
        "fold_model_test_hter": _fold_model_hters(model, info, data.images[test], test_labels, threshold, tta=tta,
                                                  device=device, precision=score_precision),
        "weights": info["config"].get("weights_used", "unknown"),
        "n_oof": int(len(oof.rows)), "n_oof_class_0": int((oof_labels == 0).sum()),
        "folds_scored": int(np.unique(oof.fold).size),
        **{f"n_{name}": c["n"] for name, c in counts.items()},
        **{f"n_{name}_class_0": c["class_0"] for name, c in counts.items()},
        "threshold_method": threshold_method, "tta": tta, "eer": report["eer"], "confusion": report["confusion"],
        "epochs_run": summary.get("epochs_run"), "train_seconds": summary.get("train_seconds"),
        "train_cpu_seconds": summary.get("train_cpu_seconds"),
        # What makes numbers differ from one machine to another.
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
        "train_precision": (summary.get("precision") or {}).get("train"), "score_precision": score_precision,
    }
    _write_figures(variant, info, data.images[test], test_labels, test_scores, predicted, threshold, report, out_dir)
    write_json(out_dir / "threshold.json", choice)  # why this threshold: the out-of-fold figures behind it
    # Face by face: what pairs two experiments on the same faces (facecls grid).
    write_scores(out_dir / TEST_SCORES, data, test, test_scores, predicted)
    write_scores(out_dir / OOF_SCORES, data, oof.rows, oof.scores, oof_predicted, oof.fold)
    # Written last: DVC sees a complete set of outputs or the stage fails.
    write_json(metrics_path, metrics)
    return metrics


def _fold_model_hters(model, info: dict, images: np.ndarray, labels: np.ndarray, threshold: float, *, tta: bool,
                      device: torch.device, precision: str) -> list[float]:
    """Each fold model's test HTER, for a variant's mean of fold models (none for an ensemble of variants)."""
    members = info["config"].get("members") or []
    if not members or any("fold" not in member for member in members):
        return []
    return [hter(labels, labels_at(predict_scores(member, images, device, tta=tta, precision=precision), threshold))
            for member in model.members]


def write_scores(path: Path, data: LabelledSet, rows: np.ndarray, scores: np.ndarray, predicted: np.ndarray,
                 fold: np.ndarray | None = None) -> None:
    """One line per face: its row in the prepared set, file, label, fold (out-of-fold scores only),
    score and predicted label."""
    files = data.files or [""] * len(data.labels)
    folds = [] if fold is None else fold.tolist()
    lines = ["row,file,label," + ("fold," if fold is not None else "") + "score,predicted"] + [
        f"{r},{files[r]},{data.labels[r]}," + (f"{folds[i]}," if fold is not None else "") + f"{s:.6f},{p}"
        for i, (r, s, p) in enumerate(zip(rows.tolist(), scores.tolist(), predicted))]
    write_text(path, "\n".join(lines) + "\n")


def _write_figures(variant: str, info: dict, images: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                   predicted: np.ndarray, threshold: float, report: dict, out_dir: Path) -> None:
    write_json(out_dir / "roc.json", roc_points(labels, scores))
    write_json(out_dir / "confusion.json", confusion_rows(labels, predicted))
    if info.get("history"):  # an ensemble of variants has none: its members trained, it did not
        plot_training_curves(info["history"], out_dir / "training_curves.png", f"{variant}: training, per fold model")
    fpr_tpr = [(r["fpr"], r["tpr"]) for r in roc_points(labels, scores, max_points=1000)]
    plot_roc([p[0] for p in fpr_tpr], [p[1] for p in fpr_tpr], out_dir / "roc.png", f"{variant}: ROC (test part)",
             auc=report["auc"], eer=report["eer"],
             operating_point={"fpr": 1 - report["recall_0"], "tpr": report["recall_1"], "threshold": threshold})
    plot_confusion(report["confusion"], out_dir / "confusion.png", f"{variant} (test part, threshold {threshold:.3f})")
    plot_confident_errors(images, labels, scores, threshold, out_dir / "confident_errors.png",
                          f"{variant}: most confidently wrong test faces")
