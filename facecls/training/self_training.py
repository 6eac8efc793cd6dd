"""Self-training (``train.self_training``): train, label the unlabelled faces (``val_img``) the
model is sure of, train again from scratch on the train part plus those.

The pseudo-labels come from the variant's own first model (its scored weights, averaged when
``train.ema`` is on, with mirror TTA): the faces scored at least ``pseudo_confidence`` become
class 1, those at most 1 - ``pseudo_confidence`` class 0. Both classes are kept in the train
part's proportions (the surplus of the over-represented class dropped, least confident first), so
the second round learns no other class balance than the first. Tune and test faces are never
pseudo-labelled: only ``val_img`` is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from facecls.data.prepared import LabelledSet, load_unlabelled
from facecls.data.split import TRAIN
from facecls.device import pick_device
from facecls.models.files import load_model
from facecls.models.inference import predict_scores
from facecls.models.precision import resolve_precision
from facecls.training.loop import train_variant


class StackedImages:
    """Two uint8 image arrays read as one, the second's rows after the first's, without copying the
    first (a memory-mapped 1.2 GB at full size). Rows are read with index arrays or slices."""

    def __init__(self, first: np.ndarray, second: np.ndarray) -> None:
        self.first, self.second = first, second
        self.shape = (len(first) + len(second), *first.shape[1:])
        self.dtype = first.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        index = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index)
        out = np.empty((len(index), *self.shape[1:]), dtype=self.dtype)
        low = index < len(self.first)
        out[low] = self.first[index[low]]
        out[~low] = self.second[index[~low] - len(self.first)]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return np.concatenate([self.first, self.second]).astype(dtype or self.dtype, copy=False)


def pseudo_labels(scores: np.ndarray, train_labels: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices into ``scores``, their labels): the confident faces of both classes, in the
    proportions of ``train_labels``."""
    share_0 = float(np.mean(train_labels == 0))
    zeros = np.flatnonzero(scores <= 1 - confidence)
    ones = np.flatnonzero(scores >= confidence)
    zeros, ones = zeros[np.argsort(scores[zeros])], ones[np.argsort(-scores[ones])]  # most confident first
    if 0 < share_0 < 1 and len(zeros) + len(ones):
        # Keep as many of each class as the other class's count allows at the train part's ratio.
        keep_0 = min(len(zeros), int(round(len(ones) * share_0 / (1 - share_0))))
        keep_1 = min(len(ones), int(round(len(zeros) * (1 - share_0) / share_0)))
        zeros, ones = zeros[:keep_0], ones[:keep_1]
    chosen = np.concatenate([zeros, ones])
    return chosen, np.concatenate([np.zeros(len(zeros), np.uint8), np.ones(len(ones), np.uint8)])


def with_pseudo_labels(data: LabelledSet, images: np.ndarray, chosen: np.ndarray, labels: np.ndarray,
                       files: list[str] | None = None) -> LabelledSet:
    """``data`` with the ``chosen`` unlabelled faces appended to its train part under ``labels``; every
    row of ``data`` keeps its index, so its tune and test parts are untouched."""
    order = np.argsort(chosen)  # rows read in order from the memory map
    chosen, labels = chosen[order], labels[order]
    extra_files = [f"val_img/{files[i]}" for i in chosen] if files else [""] * len(chosen)
    return LabelledSet(StackedImages(data.images, np.asarray(images[chosen])),
                       np.concatenate([data.labels, labels]),
                       np.concatenate([data.part, np.full(len(chosen), TRAIN, dtype=data.part.dtype)]),
                       (data.files or [""] * len(data.labels)) + extra_files)


def self_train(config: dict, data: LabelledSet, unlabelled: np.ndarray, model_path: Path, log_dir: Path | None,
               resume_path: Path, unlabelled_files: list[str] | None = None, extra_summary: dict | None = None) -> dict:
    """Round 1 on ``data``, pseudo-labels for ``unlabelled``, round 2 on both, saved to ``model_path``;
    returns round 2's summary with the pseudo-labels' counts and both rounds' cost."""
    first_path = resume_path.with_name(f"{resume_path.stem}-round1.pt")
    first = train_variant(config, data, first_path, None, resume_path.with_name(f"{resume_path.stem}-r1.pt"))
    model, _ = load_model(first_path)
    device = pick_device(config["device"])
    precision = resolve_precision(config["precision"], [config["arch"]], "score", device)
    scores = predict_scores(model.to(device), unlabelled, device, tta=True, precision=precision)
    chosen, labels = pseudo_labels(scores, data.labels[data.train_rows], config["pseudo_confidence"])
    counts = {"class_0": int((labels == 0).sum()), "class_1": int((labels == 1).sum())}
    print(f"{config['variant']}: self-training round 2 on {len(data.train_rows)} labelled + {len(chosen)} "
          f"pseudo-labelled faces ({counts['class_0']} class 0, {counts['class_1']} class 1; "
          f"{len(unlabelled)} unlabelled)", file=sys.stderr)
    rounds = {**(extra_summary or {}),
              "pseudo_labels": {**counts, "unlabelled": len(unlabelled), "confidence": config["pseudo_confidence"]},
              "round1": {k: first[k] for k in ("best_epoch", "best_tune_hter", "train_seconds", "train_cpu_seconds")}}
    summary = train_variant(config, with_pseudo_labels(data, unlabelled, chosen, labels, unlabelled_files),
                            model_path, log_dir, resume_path, extra_summary=rounds)
    first_path.unlink(missing_ok=True)
    return summary


def train_recipe(config: dict, data: LabelledSet, model_path: Path, log_dir: Path | None, resume_path: Path,
                 prepared: Path = Path("data/prepared"), extra_summary: dict | None = None) -> dict:
    """What a variant's config asks for: ``self_train`` with the unlabelled faces of ``prepared``
    when ``train.self_training`` is on, else one ``train_variant``."""
    if not config["self_training"]:
        return train_variant(config, data, model_path, log_dir, resume_path, extra_summary)
    unlabelled = load_unlabelled(prepared)
    return self_train(config, data, unlabelled.images, model_path, log_dir, resume_path, unlabelled.files,
                      extra_summary)
