"""The check stage: is this archive what the pipeline expects, and what is in it?

Answered without extracting anything: the central directory gives the layout and every
entry's name, kind and declared size (facecls.data.archive checks them), the label file
is read and parsed, image names must be numbers used once, and each train image needs
its label line. The answer is a small manifest (about 6 MB for 120,000 images): the root,
per folder the images in numeric order with their sizes, CRCs and where they lie in the
archive, and the labels. The index stage decodes the images straight from the archive by
it, without parsing the archive's directory again; the bytes of each image are checked
there (CRC, decoding), where they are read anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecls.atomic import write_text
from facecls.data.archive import (
    IMAGE_FOLDERS,
    ArchiveLayout,
    Entry,
    entry_of,
    entry_source,
    find_layout,
    open_zip,
    read_entries,
)
from facecls.data.images import is_listed, order_by_number
from facecls.data.labels import decode_labels
from facecls.errors import FaceclsError

FORMAT = 1
# The manifest's columns that, with the entry's name, say how to read it (facecls.data.archive.Entry).
_ENTRY_COLUMNS = {"bytes": "size", "crc32": "crc", "offsets": "offset", "compressed": "compressed",
                  "methods": "method"}


def _images_of(archive: Path, layout: ArchiveLayout, folder: str) -> dict:
    """The images directly in ``folder`` (subfolders and dot files are not of the set), in numeric order."""
    prefix = f"{layout.root}{folder}/"
    infos = {i.filename[len(prefix):]: i for i in layout.members if i.filename.startswith(prefix)}
    names = [name for name in infos if "/" not in name and is_listed(name)]
    numbered, _ = order_by_number(names, lambda name: entry_source(archive, prefix + name),
                                  f"{archive}: {prefix}")
    entries = [entry_of(archive, infos[name]) for _, name in numbered]
    return {"names": [name for _, name in numbered], "numbers": [n for n, _ in numbered],
            **{column: [getattr(e, field) for e in entries] for column, field in _ENTRY_COLUMNS.items()}}


def _check_labels(archive: Path, layout: ArchiveLayout, labels: np.ndarray, train: dict) -> None:
    label_entry, folder = layout.label_entry, f"{layout.root}train_img/"
    if len(labels) != len(train["names"]):
        raise FaceclsError(f"{archive}: {label_entry} has {len(labels)} lines but {folder} holds "
                           f"{len(train['names'])} images")
    for name, number in zip(train["names"], train["numbers"]):
        if not 1 <= number <= len(labels):
            raise FaceclsError(f"{entry_source(archive, folder + name)}: number {number} has no line in "
                               f"{label_entry} ({len(labels)} lines)")


def describe_archive(archive: Path, layout: ArchiveLayout) -> dict:
    """The manifest of a checked archive; a FaceclsError names the first problem."""
    label_info = next(i for i in layout.members if i.filename == layout.label_entry)
    (raw,) = read_entries(archive, [entry_of(archive, label_info)])
    labels = decode_labels(raw, f"{archive}: {layout.label_entry}")
    images = {folder: _images_of(archive, layout, folder) for folder in IMAGE_FOLDERS}
    _check_labels(archive, layout, labels, images["train_img"])
    return {"format": FORMAT, "archive": str(archive), "archive_bytes": archive.stat().st_size,
            "root": layout.root, "label_entry": layout.label_entry,
            # "0110...": one character per label line, a tenth of a JSON list's size.
            "labels": bytes(labels + ord("0")).decode("ascii"), **images}


def check_archive_layout(archive: Path) -> tuple[ArchiveLayout, dict]:
    """Check ``archive`` without extracting it; where its entries are, and its manifest."""
    with open_zip(archive) as zf:
        layout = find_layout(archive, zf)
    return layout, describe_archive(archive, layout)


def check_archive(archive: str | Path) -> dict:
    """Check ``archive`` without extracting it; its manifest."""
    return check_archive_layout(Path(archive))[1]


def write_manifest(path: str | Path, manifest: dict) -> None:
    # Compact: one line of a few MB for 120,000 images, where indented JSON would be three times that.
    write_text(path, json.dumps(manifest, separators=(",", ":")) + "\n")


def counts(manifest: dict) -> dict:
    """What the check stage and `facecls extract` report."""
    labels = manifest["labels"]
    return {"archive": manifest["archive"], "root": manifest["root"] or "(top level)",
            "train_images": len(manifest["train_img"]["names"]), "val_images": len(manifest["val_img"]["names"]),
            "class_0": labels.count("0"), "class_1": labels.count("1")}


def format_counts(c: dict) -> str:
    return (f"{c['archive']} (root {c['root']}): {c['train_images']} train images "
            f"(class 0: {c['class_0']}, class 1: {c['class_1']}), {c['val_images']} val images")


@dataclass
class Manifest:
    """A manifest as the index stage reads it."""
    path: Path
    archive: Path
    root: str
    labels: np.ndarray  # line N labels train image number N
    folders: dict  # per image folder: names, numbers and the _ENTRY_COLUMNS, equal-length lists

    def numbers(self, folder: str) -> np.ndarray:
        return np.asarray(self.folders[folder]["numbers"], dtype=np.int64)

    def entries(self, folder: str) -> list[Entry]:
        """Where each image of ``folder`` lies in the archive, and what it must read as."""
        listed = self.folders[folder]
        return [Entry(f"{self.root}{folder}/{name}", offset, compressed, size, crc, method)
                for name, size, crc, offset, compressed, method in zip(
                    listed["names"], *(listed[column] for column in _ENTRY_COLUMNS))]


def load_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        folders = {folder: data[folder] for folder in IMAGE_FOLDERS}
        labels = np.frombuffer(data["labels"].encode("ascii"), dtype=np.uint8) - ord("0")
        manifest = Manifest(path, Path(data["archive"]), data["root"], labels, folders)
        archive_bytes = int(data["archive_bytes"])
        numbers = manifest.numbers("train_img")
        if data["format"] != FORMAT or labels.max() > 1 or numbers.min() < 1 or numbers.max() > len(labels) or any(
                len({len(listed[key]) for key in ("names", "numbers", *_ENTRY_COLUMNS)}) != 1
                for listed in folders.values()):
            raise ValueError("inconsistent")
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run the check stage first: dvc repro check)") from None
    except OSError as exc:
        raise FaceclsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeError):
        raise FaceclsError(f"{path}: not a manifest this version of facecls reads "
                           "(run the check stage again: dvc repro check)") from None
    try:
        size = manifest.archive.stat().st_size
    except FileNotFoundError:
        raise FaceclsError(f"{manifest.archive}: archive not found (named by {path})") from None
    except OSError as exc:
        raise FaceclsError(f"{manifest.archive}: cannot read ({exc.strerror or exc})") from None
    # A cheap sign of another archive at the same path; the name in each entry's local header
    # and its CRC, checked as it is read, are the rest.
    if size != archive_bytes:
        raise FaceclsError(f"{path}: describes another archive than {manifest.archive} (its size changed); "
                           "run the check stage again (dvc repro check)")
    return manifest
