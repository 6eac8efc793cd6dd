"""Score one trained variant: the threshold on the tune part, then every reported figure on
the test part, once, at that threshold, with its bootstrap interval; plot data and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from facecls.atomic import write_json, write_text
from facecls.data.prepared import LabelledSet
from facecls.data.split import part_counts
from facecls.device import pick_device
from facecls.evaluation.plots import plot_confident_errors, plot_confusion, plot_roc, plot_training_curves
from facecls.evaluation.pairing import TEST_SCORES
from facecls.evaluation.rates import classification_report, confusion_rows, hter_interval, labels_at, roc_points
from facecls.evaluation.thresholds import METHODS, choose_threshold
from facecls.models.files import load_model
from facecls.models.inference import predict_scores
from facecls.models.precision import scoring_precision
from facecls.params import check, check_choice, get


def evaluate_settings(params: dict, source: str = "params.yaml") -> tuple[str, bool]:
    """(evaluate.threshold, predict.tta), checked: how every variant is scored."""
    method, tta = str(get(params, "evaluate.threshold", source)), get(params, "predict.tta", source)
    check_choice(method, METHODS, source, "evaluate.threshold")
    check(isinstance(tta, bool), source, "predict.tta", "true or false", tta)
    return method, tta


def evaluate_variant(variant: str, model_path: Path, data: LabelledSet, *, tta: bool, threshold_method: str,
                     metrics_path: Path, out_dir: Path, device: str = "auto", precision: str = "auto") -> dict:
    model, info = load_model(model_path, expect_variant=variant)
    return evaluate_model(variant, model, info, data, tta=tta, threshold_method=threshold_method,
                          metrics_path=metrics_path, out_dir=out_dir, device=device, precision=precision)


def evaluate_model(variant: str, model, info: dict, data: LabelledSet, *, tta: bool, threshold_method: str,
                   metrics_path: Path, out_dir: Path, device: str = "auto", precision: str = "auto") -> dict:
    """Score a loaded model (a variant's, or the ensemble of several): threshold on tune, figures on test.

    ``info`` is what ``load_model`` returns beside the model: its ``config`` (for
    ``weights_used`` and the architectures), and optionally ``history`` and ``summary``.
    ``precision`` is the knob (auto, fp32, bf16), resolved here for this device and model.
    """
    device = pick_device(device)
    score_precision = scoring_precision(precision, info["config"], device)
    model.to(device)
    tune, test = data.tune_rows, data.test_rows
    tune_labels, test_labels = data.labels[tune], data.labels[test]
    tune_scores = predict_scores(model, data.images[tune], device, tta=tta, precision=score_precision)
    test_scores = predict_scores(model, data.images[test], device, tta=tta, precision=score_precision)

    choice = choose_threshold(tune_labels, tune_scores, method=threshold_method)
    threshold = float(choice["threshold"])
    report = classification_report(test_labels, test_scores, threshold)
    predicted = labels_at(test_scores, threshold)
    summary = info.get("summary", {})
    counts = part_counts(data.labels, data.part)
    metrics = {
        # The reported figures: the test part, at the threshold chosen on tune.
        "hter": report["hter"], "hter_ci95": hter_interval(test_labels, predicted),
        "recall_0": report["recall_0"], "recall_1": report["recall_1"], "auc": report["auc"],
        "threshold": threshold, "hter_at_0_5": classification_report(test_labels, test_scores, 0.5)["hter"],
        "weights": info["config"].get("weights_used", "unknown"),
        # What the choices were made on: the tune part.
        "tune_hter": classification_report(tune_labels, tune_scores, threshold)["hter"],
        "tune_hter_ci95": hter_interval(tune_labels, labels_at(tune_scores, threshold)),
        **{f"n_{name}": c["n"] for name, c in counts.items()},
        **{f"n_{name}_class_0": c["class_0"] for name, c in counts.items()},
        "threshold_method": threshold_method, "tta": tta, "eer": report["eer"], "confusion": report["confusion"],
        "best_epoch": summary.get("best_epoch"), "train_seconds": summary.get("train_seconds"),
        "train_cpu_seconds": summary.get("train_cpu_seconds"),
        # What makes numbers differ from one machine to another.
        "torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
        "train_precision": (summary.get("precision") or {}).get("train"), "score_precision": score_precision,
    }
    _write_figures(variant, info, data.images[test], test_labels, test_scores, predicted, threshold, report, out_dir)
    write_json(out_dir / "threshold.json", choice)  # why this threshold: the tune figures behind it
    # Face by face: what pairs two experiments' test figures on the same faces (facecls grid).
    write_test_scores(out_dir / TEST_SCORES, data, test, test_scores, predicted)
    # Written last: DVC sees a complete set of outputs or the stage fails.
    write_json(metrics_path, metrics)
    return metrics


def test_figures(model, info: dict, data: LabelledSet, threshold: float, *, tta: bool, scores_path: Path,
                 device: str = "auto", precision: str = "auto") -> dict:
    """The test part scored once at a threshold chosen before (a refit applies its variant's): HTER
    with its interval, both recalls and the AUC; each face's score written to ``scores_path``."""
    device = pick_device(device)
    test = data.test_rows
    scores = predict_scores(model.to(device), data.images[test], device, tta=tta,
                            precision=scoring_precision(precision, info["config"], device))
    report = classification_report(data.labels[test], scores, threshold)
    predicted = labels_at(scores, threshold)
    write_test_scores(scores_path, data, test, scores, predicted)
    return {"hter": report["hter"], "hter_ci95": hter_interval(data.labels[test], predicted),
            **{k: report[k] for k in ("recall_0", "recall_1", "auc")}}


def write_test_scores(path: Path, data: LabelledSet, rows: np.ndarray, scores: np.ndarray,
                      predicted: np.ndarray) -> None:
    """One line per test face: its row in the prepared set, file, label, score and predicted label."""
    files = data.files or [""] * len(data.labels)
    lines = ["row,file,label,score,predicted"] + [
        f"{r},{files[r]},{data.labels[r]},{s:.6f},{p}" for r, s, p in zip(rows.tolist(), scores.tolist(), predicted)]
    write_text(path, "\n".join(lines) + "\n")


def _write_figures(variant: str, info: dict, images: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                   predicted: np.ndarray, threshold: float, report: dict, out_dir: Path) -> None:
    write_json(out_dir / "roc.json", roc_points(labels, scores))
    write_json(out_dir / "confusion.json", confusion_rows(labels, predicted))
    if info.get("history"):  # an ensemble has none: its members trained, it did not
        plot_training_curves(info["history"], out_dir / "training_curves.png", f"{variant}: training")
    fpr_tpr = [(r["fpr"], r["tpr"]) for r in roc_points(labels, scores, max_points=1000)]
    plot_roc([p[0] for p in fpr_tpr], [p[1] for p in fpr_tpr], out_dir / "roc.png", f"{variant}: ROC (test part)",
             auc=report["auc"], eer=report["eer"],
             operating_point={"fpr": 1 - report["recall_0"], "tpr": report["recall_1"], "threshold": threshold})
    plot_confusion(report["confusion"], out_dir / "confusion.png", f"{variant} (test part, threshold {threshold:.3f})")
    plot_confident_errors(images, labels, scores, threshold, out_dir / "confident_errors.png",
                          f"{variant}: most confidently wrong test faces")
