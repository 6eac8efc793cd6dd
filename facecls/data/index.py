"""The index stage: label, split and decode every image once into uint8 arrays.

Later stages memory-map ``train_img.npy`` / ``val_img.npy`` (N x 64 x 64 x 3)
instead of reopening 120,000 JPEGs every epoch.
"""

from __future__ import annotations

import csv
import errno
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facecls.atomic import atomic_dir
from facecls.data.images import SIZE, decode_image, list_numbered_images
from facecls.data.labels import read_labels
from facecls.data.split import PARTS, part_counts, stratified_split
from facecls.errors import FaceclsError, one_line

CHUNK = 1024
# Below this many images a process pool costs more than it saves.
PARALLEL_FROM = 4096


def _decode_chunk(paths: list[str], array_path: str, start: int) -> int:
    # Decoded into memory first, then written to the memory map with one slice: row by
    # row through np.memmap, and with a pathlib object per file, the Python around each
    # decode cost about a tenth of the stage's CPU time.
    decoded = np.empty((len(paths), SIZE, SIZE, 3), dtype=np.uint8)
    resized = 0
    for offset, path in enumerate(paths):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise FaceclsError(f"{path}: cannot read ({exc.strerror or exc})") from None
        decoded[offset], was_resized = decode_image(data, path)
        resized += was_resized
    images = np.load(array_path, mmap_mode="r+")
    images[start:start + len(paths)] = decoded
    images.flush()
    return resized


def _reserve_space(path: Path) -> None:
    """Allocate the whole file now: a memory-mapped write to a full disk kills the
    process with SIGBUS (no message, temp folder left behind); this fails with ENOSPC."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


def decode_to_array(paths: list[Path], array_path: Path, desc: str, workers: int | None = None) -> int:
    """Decode ``paths`` into a new .npy at ``array_path``; returns how many were resized."""
    images = np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8,
                                       shape=(len(paths), SIZE, SIZE, 3))
    del images
    _reserve_space(array_path)
    chunks = [(i, [str(p) for p in paths[i:i + CHUNK]]) for i in range(0, len(paths), CHUNK)]
    workers = workers or os.cpu_count() or 1
    resized = 0
    # disable=None: no progress bar when stderr is not a terminal (logs, CI).
    with tqdm(total=len(paths), desc=desc, unit="img", mininterval=1.0, disable=None) as bar:
        if workers == 1 or len(paths) < PARALLEL_FROM:
            for start, chunk in chunks:
                resized += _decode_chunk(chunk, str(array_path), start)
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(workers) as pool:
                futures = [(len(chunk), pool.submit(_decode_chunk, chunk, str(array_path), start))
                           for start, chunk in chunks]
                try:
                    for size, future in futures:
                        resized += future.result()
                        bar.update(size)
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
    return resized


def _label_of_each(numbered: list[tuple[int, Path]], labels: np.ndarray, label_path: Path) -> np.ndarray:
    if len(numbered) != len(labels):
        raise FaceclsError(f"{label_path}: {len(labels)} lines but train_img/ holds {len(numbered)} images")
    numbers = np.array([n for n, _ in numbered])
    bad = numbers[(numbers < 1) | (numbers > len(labels))]
    if len(bad):
        path = dict(numbered)[int(bad[0])]
        raise FaceclsError(f"{path}: number {bad[0]} has no line in {label_path.name} "
                           f"({len(labels)} lines)")
    return labels[numbers - 1]


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def build_index(raw_dir: str | Path, out_dir: str | Path, tune_fraction: float, test_fraction: float, seed: int,
                workers: int | None = None) -> dict:
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    label_path = raw_dir / "label_train.txt"
    labels = read_labels(label_path)
    train, _ = list_numbered_images(raw_dir / "train_img")
    val, val_gaps = list_numbered_images(raw_dir / "val_img")
    train_labels = _label_of_each(train, labels, label_path)
    part = stratified_split(train_labels, tune_fraction, test_fraction, seed)
    try:
        with atomic_dir(out_dir) as tmp:
            resized = decode_to_array([p for _, p in train], tmp / "train_img.npy", "index train_img", workers)
            resized += decode_to_array([p for _, p in val], tmp / "val_img.npy", "index val_img", workers)
            _write_csv(tmp / "train_img.csv", ["row", "file", "number", "label", "part"],
                       ((i, p.name, n, int(y), PARTS[k])
                        for i, ((n, p), y, k) in enumerate(zip(train, train_labels, part))))
            _write_csv(tmp / "val_img.csv", ["row", "file", "number"],
                       ((i, p.name, n) for i, (n, p) in enumerate(val)))
            summary = {
                "parts": part_counts(train_labels, part),
                "val_img": len(val),
                "val_img_missing_numbers": val_gaps[:20],
                "val_img_missing_count": len(val_gaps),
                "resized": int(resized),
            }
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as exc:
        # Unreadable images are reported per file as FaceclsError: an OSError here is the disk.
        raise FaceclsError(f"{out_dir}: cannot write ({exc.strerror or one_line(exc)})") from None
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{name:8s} {c['n']:6d} images, class 0: {c['class_0']:6d}" for name, c in summary["parts"].items()]
    lines.append(f"val_img  {summary['val_img']:6d} images (unlabelled)")
    if summary["resized"]:
        lines.append(f"resized to 64x64: {summary['resized']} images")
    if summary["val_img_missing_count"]:
        lines.append(f"warning: missing numbers in val_img: {summary['val_img_missing_count']} "
                     f"(first: {summary['val_img_missing_numbers'][:5]}); label_val.txt follows numeric order")
    return "\n".join(lines)
