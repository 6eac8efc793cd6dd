"""The demo archive: each image's photo and label, and the zip in the exercise's layout
with the val labels (the hidden truth) in a file of their own."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
from PIL import Image

from facecls.atomic import atomic_path
from facecls.errors import FaceclsError
from facecls.tools.demo.accessories import ACCESSORIES, ACCESSORY_WEIGHTS
from facecls.tools.demo.draws import chance, pick
from facecls.tools.demo.faces import draw_face

DEFAULT_SEED = 64_2020
# Small enough that the default recipe (five fold models per variant) runs the demo within its
# 10 minutes on 2 cores in fp32: the demo fits the recipe, never the reverse.
DEFAULT_TRAIN, DEFAULT_VAL = 700, 200
ROOT = "demo_faces"
ACCESSORY_RATE = 0.12
LABEL_NOISE = 0.01
JPEG_QUALITY = 85
# Fixed entry metadata so the zip bytes depend only on the drawings.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16
DIR_MODE = (0o040755 << 16) | 0x10
SPLIT_CODES = {"train": 0, "val": 1}


def demo_image(seed: int, split: str, index: int) -> tuple[Image.Image, int]:
    """The photo and its (possibly noisy) label for image ``index`` (from 1) of ``split``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))
    accessory = pick(rng, ACCESSORIES, ACCESSORY_WEIGHTS) if chance(rng, ACCESSORY_RATE) else None
    label = 0 if accessory else 1
    if chance(rng, LABEL_NOISE):  # real annotations have a few wrong labels
        label = 1 - label
    return draw_face(rng, accessory), label


def jpeg_bytes(photo: Image.Image) -> bytes:
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0", optimize=False,
               progressive=False)
    return buffer.getvalue()


def zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3  # unix, so the modes below mean the same everywhere
    info.external_attr = DIR_MODE if name.endswith("/") else FILE_MODE
    info.compress_type = zipfile.ZIP_STORED  # JPEGs don't shrink; no zlib-version drift
    return info


def labels_text(labels: list[int]) -> str:
    return "".join(f"{label}\n" for label in labels)


def write_atomically(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Call ``fill(file)`` on a temp file beside ``path``, then move it into place."""
    # atomic_path would create a missing folder: a mistyped --out should fail instead.
    if not path.parent.is_dir():
        raise FaceclsError(f"{path}: folder {path.parent} does not exist")
    with atomic_path(path) as temp, open(temp, "wb") as file:
        fill(file)


def write_demo_archive(path: str | os.PathLike, *, n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL,
                       seed: int = DEFAULT_SEED, truth_path: str | os.PathLike | None = None) -> dict:
    """Write the demo zip (and the val labels to ``truth_path`` if given).

    Returns image counts per split and label: {"train": {0: .., 1: ..}, "val": {...}}.
    """
    for name, count in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(count, int) or count < 1:
            raise FaceclsError(f"{name}: {count!r} is not a positive whole number")
    if not isinstance(seed, int) or seed < 0:
        raise FaceclsError(f"seed: {seed!r} is not a non-negative whole number")
    labels: dict[str, list[int]] = {}

    def fill(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr(zip_entry(f"{ROOT}/"), b"")
            for split, count in (("train", n_train), ("val", n_val)):
                archive.writestr(zip_entry(f"{ROOT}/{split}_img/"), b"")
                labels[split] = []
                for index in range(1, count + 1):
                    photo, label = demo_image(seed, split, index)
                    labels[split].append(label)
                    archive.writestr(zip_entry(f"{ROOT}/{split}_img/{index:06d}.jpg"), jpeg_bytes(photo))
                if split == "train":  # val labels are the hidden truth, kept out of the zip
                    archive.writestr(zip_entry(f"{ROOT}/label_train.txt"), labels_text(labels[split]))

    write_atomically(Path(path), fill)
    if truth_path is not None:
        write_atomically(Path(truth_path), lambda file: file.write(labels_text(labels["val"]).encode()))
    return {split: {label: values.count(label) for label in (0, 1)} for split, values in labels.items()}
