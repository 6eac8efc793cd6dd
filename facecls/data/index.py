"""The index stage: label, split and decode every image once, straight from the archive, into uint8 arrays.

The check stage's manifest says which entries are the images, in numeric order, and the
labels; here every image is read from the archive and decoded (facecls.data.decode), and
the arrays, CSV indexes and summary are written. Later stages memory-map
``train_img.npy`` / ``val_img.npy`` (N x 64 x 64 x 3) instead of reopening 120,000 JPEGs
every epoch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from facecls.atomic import atomic_dir
from facecls.data.archive import ArchiveSource
from facecls.data.decode import decode_to_array
from facecls.data.images import MissingNumbers
from facecls.data.manifest import load_manifest
from facecls.data.split import PARTS, part_counts, stratified_split
from facecls.errors import FaceclsError, one_line


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def build_index(manifest_path: str | Path, out_dir: str | Path, test_fraction: float, seed: int,
                workers: int | None = None, fold: int = 0) -> dict:
    manifest, out_dir = load_manifest(manifest_path), Path(out_dir)
    entries = {folder: manifest.entries(folder) for folder in manifest.folders}
    train_numbers, val_numbers = manifest.numbers("train_img"), manifest.numbers("val_img")
    train_labels = manifest.labels[train_numbers - 1]
    part = stratified_split(train_labels, test_fraction, seed, fold)
    source = ArchiveSource(str(manifest.archive))
    try:
        with atomic_dir(out_dir) as tmp:
            resized = sum(decode_to_array(source, entries[folder], tmp / f"{folder}.npy", f"index {folder}", workers)
                          for folder in ("train_img", "val_img"))
            train_names, val_names = manifest.folders["train_img"]["names"], manifest.folders["val_img"]["names"]
            _write_csv(tmp / "train_img.csv", ["row", "file", "number", "label", "part"],
                       ((i, name, n, y, PARTS[k]) for i, (name, n, y, k)
                        in enumerate(zip(train_names, train_numbers.tolist(), train_labels.tolist(), part))))
            _write_csv(tmp / "val_img.csv", ["row", "file", "number"],
                       ((i, name, n) for i, (name, n) in enumerate(zip(val_names, val_numbers.tolist()))))
            val_gaps = MissingNumbers(val_numbers.tolist())
            summary = {
                "fold": fold,
                "parts": part_counts(train_labels, part),
                "val_img": len(val_names),
                "val_img_missing_numbers": val_gaps[:20],
                "val_img_missing_count": len(val_gaps),
                "resized": int(resized),
            }
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    except OSError as exc:
        # Problems with the archive are reported per entry as FaceclsError: an OSError here is the disk.
        raise FaceclsError(f"{out_dir}: cannot write ({exc.strerror or one_line(exc)})") from None
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"{name:8s} {c['n']:6d} images, class 0: {c['class_0']:6d}" for name, c in summary["parts"].items()]
    if summary.get("fold"):
        lines.append(f"(fold {summary['fold']}: the test part rotated along the seeded order)")
    lines.append(f"val_img  {summary['val_img']:6d} images (unlabelled)")
    if summary["resized"]:
        lines.append(f"resized to 64x64: {summary['resized']} images")
    if summary["val_img_missing_count"]:
        lines.append(f"warning: missing numbers in val_img: {summary['val_img_missing_count']} "
                     f"(first: {summary['val_img_missing_numbers'][:5]}); label_val.txt follows numeric order")
    return "\n".join(lines)
