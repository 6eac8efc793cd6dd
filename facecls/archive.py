"""Extract the exercise archive safely, whatever top folder it uses.

The archive comes from elsewhere, so every entry is checked before anything
is written: nothing may land outside the target, links are refused, and the
declared sizes must fit images of 64x64 (a decompression bomb is refused).
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from facecls.atomic import atomic_dir
from facecls.errors import FaceclsError
from facecls.images import count_files
from facecls.labels import read_labels

LABEL_FILE = "label_train.txt"
IMAGE_FOLDERS = ("train_img", "val_img")
# A 64x64 image is a few kB; a generous allowance per entry still stops a
# bomb that declares gigabytes.
MAX_BYTES_PER_ENTRY = 4 * 1024 * 1024
MAX_TOTAL_SLACK = 64 * 1024 * 1024
MAX_RATIO = 200  # real JPEGs barely compress; text compresses ~10x


@dataclass
class ArchiveLayout:
    root: str  # the prefix before train_img/, "" or "something/"
    members: list[zipfile.ZipInfo]


def _open_zip(archive: Path) -> zipfile.ZipFile:
    if not archive.exists():
        raise FaceclsError(f"{archive}: archive not found (set data.archive in params.yaml)")
    if archive.is_dir():
        raise FaceclsError(f"{archive}: is a folder, expected a .zip archive")
    try:
        return zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise FaceclsError(f"{archive}: not a zip archive, or a truncated one") from None
    except OSError as exc:
        raise FaceclsError(f"{archive}: cannot read ({exc.strerror or exc})") from None


def _check_entry(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise FaceclsError(f"{archive}: entry {name!r} would be written outside the target folder")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise FaceclsError(f"{archive}: entry {name!r} is a symbolic link, refused")
    if info.file_size > MAX_BYTES_PER_ENTRY or (
        info.compress_size > 0 and info.file_size / info.compress_size > MAX_RATIO
        and info.file_size > 1024 * 1024
    ):
        raise FaceclsError(f"{archive}: entry {name!r} declares {info.file_size} bytes, "
                           "too large for a 64x64 image (decompression bomb?)")


def find_layout(archive: Path, zf: zipfile.ZipFile) -> ArchiveLayout:
    infos = [i for i in zf.infolist() if not i.filename.startswith("__MACOSX/")]
    for info in infos:
        _check_entry(archive, info)
    total = sum(i.file_size for i in infos)
    if total > len(infos) * 64 * 1024 + MAX_TOTAL_SLACK:
        raise FaceclsError(f"{archive}: declares {total / 2**20:.0f} MiB uncompressed for {len(infos)} "
                           "entries, far beyond 64x64 images (decompression bomb?)")
    roots = set()
    for info in infos:
        parts = info.filename.split("/")
        if "train_img" in parts[:-1]:
            cut = parts.index("train_img")
            roots.add("".join(p + "/" for p in parts[:cut]))
    if not roots:
        raise FaceclsError(f"{archive}: no train_img/ folder in the archive")
    if len(roots) > 1:
        shown = ", ".join(sorted(r or "(top level)" for r in roots))
        raise FaceclsError(f"{archive}: several folders hold train_img/ ({shown}); expected one")
    root = roots.pop()
    names = {i.filename for i in infos}
    if root + LABEL_FILE not in names:
        raise FaceclsError(f"{archive}: missing {root}{LABEL_FILE}")
    if not any(n.startswith(root + "val_img/") and not n.endswith("/") for n in names):
        raise FaceclsError(f"{archive}: missing {root}val_img/ (or it holds no files)")
    wanted = [i for i in infos if not i.is_dir() and (
        i.filename == root + LABEL_FILE
        or any(i.filename.startswith(f"{root}{folder}/") for folder in IMAGE_FOLDERS))]
    return ArchiveLayout(root=root, members=wanted)


def extract_archive(archive: str | Path, target: str | Path) -> dict:
    """Extract train_img/, val_img/ and label_train.txt into ``target``.

    ``target`` is replaced only when everything extracted and checked out;
    on any failure the previous ``target`` (if any) is left as it was.
    """
    archive, target = Path(archive), Path(target)
    with _open_zip(archive) as zf, atomic_dir(target) as tmp:
        layout = find_layout(archive, zf)
        for info in tqdm(layout.members, desc="unzip", unit="file", mininterval=1.0):
            relative = info.filename[len(layout.root):]
            destination = tmp / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(destination, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
            except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
                raise FaceclsError(f"{archive}: entry {info.filename!r} is damaged ({exc})") from None
            except OSError as exc:
                raise FaceclsError(f"{target}: cannot write {relative} ({exc.strerror or exc})") from None
        for folder in IMAGE_FOLDERS:
            (tmp / folder).mkdir(exist_ok=True)
        labels = read_labels(tmp / LABEL_FILE)
        n_train, n_val = (count_files(tmp / folder) for folder in IMAGE_FOLDERS)
        if len(labels) != n_train:
            raise FaceclsError(f"{archive}: {LABEL_FILE} has {len(labels)} lines but train_img/ holds "
                               f"{n_train} images")
    return {"archive": str(archive), "root": layout.root or "(top level)", "train_images": n_train,
            "val_images": n_val, "class_0": int((labels == 0).sum()), "class_1": int((labels == 1).sum())}

