"""Cross-validated training: one model per fold (facecls.data.folds), each trained on the other
folds' faces and scoring its own fold, so every train face gets an out-of-fold score from a model
that never saw it. A variant's delivered model is the mean of its fold models' probabilities.

The folds run one after the other inside one stage (one torch import, one DVC stage per variant);
a killed run keeps the fold models it finished (in ``work_dir``, each under the fingerprint of its
run) and resumes inside the fold it was in (facecls.training.resume).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facecls.data.folds import assign_folds, fold_part
from facecls.data.label_issues import apply_label_issues
from facecls.data.prepared import LabelledSet
from facecls.evaluation.out_of_fold import OutOfFold, out_of_fold
from facecls.models.architectures import FaceModel
from facecls.models.ensemble import EnsembleModel, member_spec
from facecls.models.files import load_model, save_model
from facecls.models.inference import predict_scores
from facecls.models.precision import resolve_precision
from facecls.training.distributed import is_main_process, joined
from facecls.training.loop import log_history, run_name, train_variant
from facecls.training.resume import resume_path, run_fingerprint


@dataclass
class FoldModels:
    """What training over the folds leaves: the fold models (in process 0; empty in the others),
    their configs and summaries, and the out-of-fold scores."""

    models: list[FaceModel]
    infos: list[dict]  # each fold model's file contents but the weights: config, history, summary
    oof: OutOfFold | None


def work_dir(variant: str) -> Path:
    """Where a variant's finished fold models wait for the rest: scratch, outside every stage's deps."""
    return Path(".cache") / "folds" / variant


def train_cross_validated(config: dict, data: LabelledSet, folds: int, seed: int, model_path: Path,
                          log_dir: Path | None, tta: bool = True) -> dict:
    """Train the variant ``config`` over ``folds`` folds of the train part (``seed``) and write its
    model file: the mean of its fold models, with their out-of-fold scores (scored with mirror
    ``tta``, as the mean will be), histories and summaries. Returns the summary (process 0's;
    empty in the others, which write nothing)."""
    fold = assign_folds(data.labels, data.part, folds, seed)
    trained = train_folds(config, data, fold, work_dir(config["variant"]), log_dir, config["label_issues"], tta)
    if not is_main_process():
        return {}
    summary = {**fold_summary(trained.infos), "folds": folds, "cv_seed": seed}
    save_model(model_path, EnsembleModel(trained.models),
               {**config, "weights_used": summary["weights_used"],
                "members": [member_spec(info["config"]) for info in trained.infos]},
               history=[info["history"] for info in trained.infos], summary=summary,
               out_of_fold=trained.oof.record())
    clear(work_dir(config["variant"]))
    return summary


def fold_summary(infos: list[dict]) -> dict:
    """One summary of several fold models: what each ran and what they cost together."""
    each = [info["summary"] for info in infos]
    return {"fold_models": len(each), "epochs_run": [s["epochs_run"] for s in each],
            "best_epoch": [s["best_epoch"] for s in each],
            "train_seconds": round(sum(s["train_seconds"] for s in each), 2),
            "train_cpu_seconds": round(sum(s["train_cpu_seconds"] for s in each), 2),
            "images_per_s": round(float(np.mean([s["images_per_s"] for s in each])), 1),
            **{key: each[0][key] for key in ("pos_weight", "weights_used", "device", "processes", "precision")}}


def trained_folds(config: dict, folds: int) -> list[int]:
    """The folds that get a model: all of them, or the first ``fold_models`` (a cheaper study row)."""
    wanted = config["fold_models"]
    return list(range(folds if wanted == "all" else min(wanted, folds)))


def train_folds(config: dict, data: LabelledSet, fold: np.ndarray, work_dir: Path, log_dir: Path | None,
                label_issues: str = "keep", tta: bool = True) -> FoldModels:
    """Train ``config`` once per fold of ``trained_folds`` over the rows' ``fold`` (facecls.data.folds),
    each model on the other folds' faces (``label_issues`` applied to those alone), and score each
    model's own fold (with mirror ``tta``). Per-epoch logs go to ``log_dir``/fold_<k> (none when None)."""
    folds = int(fold.max()) + 1
    models, infos, rows, fold_of, scores = [], [], [], [], []
    # One process group for every fold (under torchrun): between two folds the other processes wait in
    # the next model's first collective while process 0 scores the fold just trained.
    with joined(config["device"]) as (world, device):
        precision = resolve_precision(config["precision"], [config["arch"]], "score", device)
        for k in trained_folds(config, folds):
            part = fold_part(data.labels, fold, k, config["early_stopping"], config["seed"])
            fold_data, _ = apply_label_issues(LabelledSet(data.images, data.labels, part, data.files), label_issues)
            fold_config = {**config, "fold": k, "folds": folds}
            model_path = work_dir / f"fold{k}.pt"
            fingerprint = run_fingerprint(fold_config, fold_data)
            fold_log = log_dir / f"fold_{k}" if log_dir is not None else None
            done = _finished(model_path, fingerprint)
            if done is None:
                train_variant(fold_config, fold_data, model_path, fold_log, resume_path(f"{config['variant']}-fold{k}"),
                              extra_summary={"fingerprint": fingerprint}, world=world, device=device)
            elif world.is_main:
                print(f"{run_name(fold_config)}: finished before, kept from {model_path}", file=sys.stderr)
                if fold_log is not None:
                    log_history(fold_log, done["history"], done["summary"])
            if not world.is_main:
                continue
            model, info = load_model(model_path)
            held_out = np.flatnonzero(fold == k)
            models.append(model)
            infos.append(info)
            rows.append(held_out)
            fold_of.append(np.full(held_out.size, k))
            scores.append(predict_scores(model.to(device), data.images[held_out], device, tta=tta,
                                         precision=precision))
            model.cpu()
    oof = out_of_fold(np.concatenate(rows), np.concatenate(fold_of), np.concatenate(scores)) if models else None
    return FoldModels(models, infos, oof)


def _finished(model_path: Path, fingerprint: str) -> dict | None:
    """The finished fold model's file contents (but the weights) when it is this very run's."""
    if not model_path.exists():
        return None
    try:
        record = torch.load(model_path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged file costs only the fold it held
        return None
    summary = record.get("summary") if isinstance(record, dict) else None
    if not isinstance(summary, dict) or summary.get("fingerprint") != fingerprint:
        return None
    return {key: value for key, value in record.items() if key != "state_dict"}


def clear(work_dir: Path) -> None:
    """Remove the finished fold models once the variant's file holds them."""
    for path in work_dir.glob("fold*.pt"):
        path.unlink(missing_ok=True)
