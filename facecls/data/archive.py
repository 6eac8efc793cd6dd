"""Extract the exercise archive safely, whatever top folder it uses.

The archive comes from elsewhere, so every entry is checked before anything
is written: nothing may land outside the target, links are refused, and the
declared sizes must fit images of 64x64 (a decompression bomb is refused).
"""

from __future__ import annotations

import lzma
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from facecls.atomic import atomic_dir
from facecls.data.images import count_images
from facecls.data.labels import decode_labels
from facecls.errors import FaceclsError, one_line
from facecls.params import check, get

LABEL_FILE = "label_train.txt"
IMAGE_FOLDERS = ("train_img", "val_img")
# macOS adds resource forks under __MACOSX/ when it zips a folder: never data.
JUNK_FOLDERS = ("__MACOSX/",)
# A 64x64 image is a few kB; a generous allowance per entry still stops a
# bomb that declares gigabytes.
MAX_BYTES_PER_ENTRY = 4 * 1024 * 1024
MAX_BYTES_PER_IMAGE = 64 * 1024
MAX_TOTAL_SLACK = 64 * 1024 * 1024
MAX_RATIO = 200  # real JPEGs barely compress; text compresses ~10x
COPY_CHUNK = 1 << 20

# What zipfile raises for a damaged, encrypted or exotic entry: a bad header,
# CRC or stream, an unsupported method, a name that is not valid UTF-8, or a
# read past the end of a truncated file.
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError, ValueError, struct.error, OverflowError)


def archive_setting(params: dict, source: str = "params.yaml") -> Path:
    """``data.archive``, checked to be a path (whether it exists is the extraction's business)."""
    archive = get(params, "data.archive", source)
    check(isinstance(archive, str) and archive != "", source, "data.archive", "a path", archive)
    return Path(archive)


@dataclass
class ArchiveLayout:
    root: str  # the prefix before train_img/, "" or "something/"
    members: list[zipfile.ZipInfo]


def _open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        if not archive.exists():
            raise FaceclsError(f"{archive}: archive not found (set data.archive in params.yaml)")
        if archive.is_dir():
            raise FaceclsError(f"{archive}: is a folder, expected a .zip archive")
        return zipfile.ZipFile(archive)
    except _DAMAGED:
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
    infos = [i for i in zf.infolist() if not i.filename.startswith(JUNK_FOLDERS)]
    for info in infos:
        _check_entry(archive, info)
    total = sum(i.file_size for i in infos)
    if total > len(infos) * MAX_BYTES_PER_IMAGE + MAX_TOTAL_SLACK:
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


def _copy_entry(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, destination: Path) -> None:
    """Copy one entry; a read problem blames the archive, a write problem the disk."""
    def damaged(exc: BaseException) -> FaceclsError:
        return FaceclsError(f"{archive}: entry {info.filename!r} is damaged ({one_line(exc)})")

    if info.flag_bits & 0x1:
        raise FaceclsError(f"{archive}: entry {info.filename!r} is encrypted; "
                           "re-create the archive without a password")
    try:
        src = zf.open(info)
    except NotImplementedError:
        raise FaceclsError(f"{archive}: entry {info.filename!r} uses compression method "
                           f"{info.compress_type}, which cannot be read (use deflate)") from None
    except (*_DAMAGED, OSError) as exc:
        raise damaged(exc) from None
    with src:
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            dst = open(destination, "wb")
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            # The archive holds both a file and a folder of this name: its fault, not the disk's.
            raise FaceclsError(f"{archive}: entry {info.filename!r} clashes with another entry "
                               "(a file and a folder of the same name)") from None
        with dst:
            while True:
                try:
                    chunk = src.read(COPY_CHUNK)
                except (*_DAMAGED, OSError) as exc:  # bz2 reports a bad stream as OSError
                    raise damaged(exc) from None
                if not chunk:
                    break
                dst.write(chunk)


def extract_archive(archive: str | Path, target: str | Path) -> dict:
    """Extract train_img/, val_img/ and label_train.txt into ``target``.

    ``target`` is replaced only when everything extracted and checked out;
    on any failure the previous ``target`` (if any) is left as it was.
    """
    archive, target = Path(archive), Path(target)
    with _open_zip(archive) as zf:
        layout = find_layout(archive, zf)
        try:
            with atomic_dir(target) as tmp:
                # disable=None: no progress bar when stderr is not a terminal (logs, CI);
                # the with block closes it before any error line is printed.
                with tqdm(total=len(layout.members), desc="unzip", unit="file", mininterval=1.0,
                          disable=None) as bar:
                    for info in layout.members:
                        _copy_entry(archive, zf, info, tmp / info.filename[len(layout.root):])
                        bar.update()
                for folder in IMAGE_FOLDERS:
                    (tmp / folder).mkdir(exist_ok=True)
                # Problems are reported against the entry in the archive, not the temporary copy.
                label_entry = f"{layout.root}{LABEL_FILE}"
                labels = decode_labels((tmp / LABEL_FILE).read_bytes(), f"{archive}: {label_entry}")
                n_train, n_val = (count_images(tmp / folder) for folder in IMAGE_FOLDERS)
                if len(labels) != n_train:
                    raise FaceclsError(f"{archive}: {label_entry} has {len(labels)} lines but "
                                       f"{layout.root}train_img/ holds {n_train} images")
        except OSError as exc:
            # Reads from the archive are turned into FaceclsError above: this is the disk.
            raise FaceclsError(f"{target}: cannot write ({exc.strerror or one_line(exc)})") from None
    return {"archive": str(archive), "root": layout.root or "(top level)", "train_images": n_train,
            "val_images": n_val, "class_0": int((labels == 0).sum()), "class_1": int((labels == 1).sum())}
