"""Score one trained variant on the held-out part: threshold, metrics, plot data, figures."""

from __future__ import annotations

from pathlib import Path

from facecls.atomic import write_json
from facecls.data.prepared import LabelledSet
from facecls.device import pick_device
from facecls.evaluation.plots import plot_confident_errors, plot_confusion, plot_roc, plot_training_curves
from facecls.evaluation.rates import classification_report, confusion_rows, labels_at, roc_points
from facecls.evaluation.thresholds import METHODS, choose_threshold
from facecls.models.files import load_model
from facecls.models.inference import predict_scores
from facecls.params import check, check_choice, get


def evaluate_settings(params: dict, source: str = "params.yaml") -> tuple[str, bool]:
    """(evaluate.threshold, predict.tta), checked: how every variant is scored."""
    method, tta = str(get(params, "evaluate.threshold", source)), get(params, "predict.tta", source)
    check_choice(method, METHODS, source, "evaluate.threshold")
    check(isinstance(tta, bool), source, "predict.tta", "true or false", tta)
    return method, tta


def evaluate_variant(variant: str, model_path: Path, data: LabelledSet, *, tta: bool, threshold_method: str,
                     metrics_path: Path, out_dir: Path, device: str = "auto") -> dict:
    model, info = load_model(model_path, expect_variant=variant)
    return evaluate_model(variant, model, info, data, tta=tta, threshold_method=threshold_method,
                          metrics_path=metrics_path, out_dir=out_dir, device=device)


def evaluate_model(variant: str, model, info: dict, data: LabelledSet, *, tta: bool, threshold_method: str,
                   metrics_path: Path, out_dir: Path, device: str = "auto") -> dict:
    """Score a loaded model (a variant's, or the ensemble of several) on the held-out part.

    ``info`` is what ``load_model`` returns beside the model: its ``config`` (for
    ``weights_used``), and optionally ``history`` and ``summary``.
    """
    device = pick_device(device)
    model.to(device)
    rows = data.holdout_rows
    labels = data.labels[rows]
    scores = predict_scores(model, data.images[rows], device, tta=tta)

    choice = choose_threshold(labels, scores, method=threshold_method)
    threshold = float(choice["threshold"])
    report = classification_report(labels, scores, threshold)
    at_half = classification_report(labels, scores, 0.5)
    summary = info.get("summary", {})
    metrics = {
        "hter": report["hter"], "recall_0": report["recall_0"], "recall_1": report["recall_1"],
        "auc": report["auc"], "eer": report["eer"],
        "threshold": threshold, "threshold_method": threshold_method,
        "hter_at_0_5": at_half["hter"], "recall_0_at_0_5": at_half["recall_0"],
        "recall_1_at_0_5": at_half["recall_1"],
        "confusion": report["confusion"], "n_holdout": report["n"], "tta": tta,
        "weights": info["config"].get("weights_used", "unknown"),
        "best_epoch": summary.get("best_epoch"), "train_seconds": summary.get("train_seconds"),
    }

    predicted = labels_at(scores, threshold)
    write_json(out_dir / "threshold.json", choice)  # why this threshold: bootstrap figures behind it
    write_json(out_dir / "roc.json", roc_points(labels, scores))
    write_json(out_dir / "confusion.json", confusion_rows(labels, predicted))
    title = f"{variant} (held-out, threshold {threshold:.3f})"
    if info.get("history"):  # an ensemble has none: its members trained, it did not
        plot_training_curves(info["history"], out_dir / "training_curves.png", f"{variant}: training")
    fpr_tpr = [(r["fpr"], r["tpr"]) for r in roc_points(labels, scores, max_points=1000)]
    plot_roc([p[0] for p in fpr_tpr], [p[1] for p in fpr_tpr], out_dir / "roc.png", f"{variant}: ROC (held-out)",
             auc=report["auc"], eer=report["eer"],
             operating_point={"fpr": 1 - report["recall_0"], "tpr": report["recall_1"], "threshold": threshold})
    plot_confusion(report["confusion"], out_dir / "confusion.png", title)
    plot_confident_errors(data.images[rows], labels, scores, threshold, out_dir / "confident_errors.png",
                          f"{variant}: most confidently wrong held-out faces")
    # Written last: DVC sees a complete set of outputs or the stage fails.
    write_json(metrics_path, metrics)
    return metrics
