"""The prepared data set as the training and prediction stages see it."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecls.data.split import PARTS, TEST, TRAIN, TUNE
from facecls.errors import FaceclsError

# Each image set is stored as .npy shards of at most this many rows (805 MB): DVC copies a file
# of 1 GiB or more into its cache with a loop of 1 MiB reads and writes, smaller ones with one
# sendfile. Caching the 1.23 GB of 100,000 faces took DVC 10-15 s in one file, 3.3-4.0 s in two.
SHARD_ROWS = 65536


def shard_ranges(n: int) -> list[tuple[int, int]]:
    """The (start, stop) rows of each shard of an ``n``-image set; one empty shard when n is 0."""
    return [(start, min(start + SHARD_ROWS, n)) for start in range(0, n, SHARD_ROWS)] or [(0, 0)]


def shard_name(folder: str, k: int) -> str:
    return f"{folder}.{k}.npy"


class ShardedImages:
    """The shards of one image set, memory-mapped, read as one N x 64 x 64 x 3 uint8 array:
    by row, by slice or by an array of rows (each gives a plain ndarray), or whole (np.asarray)."""

    def __init__(self, shards: list[np.ndarray]):
        self.shards = shards
        self.starts = np.cumsum([0] + [len(s) for s in shards])
        self.shape = (int(self.starts[-1]), *shards[0].shape[1:])
        self.dtype, self.ndim = shards[0].dtype, shards[0].ndim

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            key = np.arange(*key.indices(len(self)))
        rows = np.asarray(key)
        if rows.size == 0:  # [] reads as float
            rows = rows.astype(np.intp)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"image rows must be integers, a slice or a mask, not {rows.dtype}")
        rows = np.where(rows < 0, rows + len(self), rows)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"image row out of range for {len(self)} images")
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        if rows.size and (shard == shard.flat[0]).all():  # the usual case: rows of one shard
            k = int(shard.flat[0])
            return np.asarray(self.shards[k][rows - self.starts[k]])
        out = np.empty(rows.shape + self.shape[1:], dtype=self.dtype)
        for k in np.unique(shard):
            inside = shard == k
            out[inside] = self.shards[k][rows[inside] - self.starts[k]]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


@dataclass
class LabelledSet:
    images: np.ndarray | ShardedImages  # N x 64 x 64 x 3 uint8, memory-mapped
    labels: np.ndarray  # N uint8, 0 = accessory, 1 = none
    part: np.ndarray  # N uint8, each row's part: an index into facecls.data.split.PARTS

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
    images: np.ndarray | ShardedImages
    files: list[str]  # in numeric order of their names: the order of label_val.txt


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run `dvc repro index` first)") from None


def _load_shard(path: Path) -> np.ndarray:
    try:
        images = np.load(path, mmap_mode="r")
    except ValueError as exc:
        raise FaceclsError(f"{path}: not a readable image array ({exc})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (64, 64, 3):
        raise FaceclsError(f"{path}: expected N x 64 x 64 x 3 uint8, found {images.shape} {images.dtype}")
    return images


def load_images(prepared: Path, folder: str, expected: int) -> ShardedImages:
    """The ``expected`` images of ``folder`` (train_img or val_img) from their shards in ``prepared``."""
    pattern = re.compile(rf"{re.escape(folder)}\.(\d+)\.npy")
    numbered = sorted((int(m[1]), p) for p in prepared.glob(f"{folder}.*.npy") if (m := pattern.fullmatch(p.name)))
    if not numbered:
        raise FaceclsError(f"{prepared / shard_name(folder, 0)}: not found (run `dvc repro index` first)")
    found = [k for k, _ in numbered]
    if missing := sorted(set(range(found[-1])) - set(found)):
        raise FaceclsError(f"{prepared}: {folder} shards {missing} missing (found {found})")
    images = ShardedImages([_load_shard(path) for _, path in numbered])
    if len(images) != expected:
        raise FaceclsError(f"{prepared}: {folder} shards hold {len(images)} images, the index lists {expected}")
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
    return LabelledSet(load_images(prepared, "train_img", len(rows)), labels, part)


def load_unlabelled(prepared: str | Path) -> UnlabelledSet:
    prepared = Path(prepared)
    rows = _read_csv(prepared / "val_img.csv")
    return UnlabelledSet(load_images(prepared, "val_img", len(rows)), [r["file"] for r in rows])
