"""The prepared data set as the training and prediction stages see it."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecls.data.split import PARTS, TEST, TRAIN, TUNE
from facecls.errors import FaceclsError


@dataclass
class LabelledSet:
    images: np.ndarray  # N x 64 x 64 x 3 uint8, memory-mapped
    labels: np.ndarray  # N uint8, 0 = accessory, 1 = none
    part: np.ndarray  # N uint8, each row's part: an index into facecls.data.split.PARTS
    files: list[str] | None = None  # each row's file name in train_img/, where known

    @property
    def train_rows(self) -> np.ndarray:
        return np.flatnonzero(self.part == TRAIN)

    @property
    def tune_rows(self) -> np.ndarray:
        return np.flatnonzero(self.part == TUNE)

    @property
    def test_rows(self) -> np.ndarray:
        return np.flatnonzero(self.part == TEST)


@dataclass
class UnlabelledSet:
    images: np.ndarray
    files: list[str]  # in numeric order of their names: the order of label_val.txt


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run `dvc repro index` first)") from None


def _load_images(path: Path, expected: int) -> np.ndarray:
    try:
        images = np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run `dvc repro index` first)") from None
    except ValueError as exc:
        raise FaceclsError(f"{path}: not a readable image array ({exc})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3) or len(images) != expected:
        raise FaceclsError(f"{path}: expected {expected} x 64 x 64 x 3 uint8, found {images.shape} {images.dtype}")
    return images


def load_labelled(prepared: str | Path) -> LabelledSet:
    prepared = Path(prepared)
    rows = _read_csv(prepared / "train_img.csv")
    labels = np.array([int(r["label"]) for r in rows], dtype=np.uint8)
    try:
        part = np.array([PARTS.index(r["part"]) for r in rows], dtype=np.uint8)
    except (KeyError, ValueError):
        raise FaceclsError(f"{prepared / 'train_img.csv'}: no train/tune/test part column "
                           "(written by an older index stage: run `dvc repro index`)") from None
    return LabelledSet(_load_images(prepared / "train_img.npy", len(rows)), labels, part, [r["file"] for r in rows])


def load_unlabelled(prepared: str | Path) -> UnlabelledSet:
    prepared = Path(prepared)
    rows = _read_csv(prepared / "val_img.csv")
    return UnlabelledSet(_load_images(prepared / "val_img.npy", len(rows)), [r["file"] for r in rows])
