"""Builders for small archives in the exercise layout, and helpers for the data-stage tests.

Images carry their own truth in their pixels (a label-0 face is black, a
label-1 face white, a val image has the grey of its number) so a test can
check that arrays, labels and order line up without trusting the code under test.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from facecls.data.manifest import check_archive, write_manifest
from facecls.errors import FaceclsError

REPO = Path(__file__).parents[1]
# The real-photo sample sits beside the checkout (CI has the same layout); never copied in.
SHARED_SAMPLE = REPO.parent / "shared" / "data" / "faces-sample.zip"
LABEL_GREY = {0: 0, 1: 255}


def image_bytes(value: int | np.ndarray = 128, fmt: str = "JPEG", mode: str = "RGB", size: int = 64) -> bytes:
    """An encoded image: a uniform ``value`` grey, or the given uint8 HxWx3 array."""
    if isinstance(value, np.ndarray):
        img = Image.fromarray(value)
    else:
        img = Image.new("RGB", (size, size), (value, value, value))
    if mode != "RGB":
        img = img.convert(mode)
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def val_grey(number: int) -> int:
    """The grey a val image with this number is drawn in (distinct for numbers below 50)."""
    return (number * 5) % 256


def exercise_entries(labels, val_numbers=(1, 2, 3), prefix: str = "faces/", train_names=None,
                     val_names=None, label_text: str | None = None) -> dict[str, bytes]:
    """The members of an exercise archive: ``{name in the zip: content}``.

    Train image N (``000N``-padded unless ``train_names`` says otherwise) is
    black for label 0, white for label 1; val image N has grey ``val_grey(N)``.
    """
    labels = list(labels)
    train_names = train_names or [f"{n:06d}.jpg" for n in range(1, len(labels) + 1)]
    val_names = val_names or [f"{n:06d}.jpg" for n in val_numbers]
    entries: dict[str, bytes] = {}
    for name, label in zip(train_names, labels):
        entries[f"{prefix}train_img/{name}"] = image_bytes(LABEL_GREY[label])
    entries[f"{prefix}label_train.txt"] = (label_text if label_text is not None
                                          else "".join(f"{v}\n" for v in labels)).encode()
    for name in val_names:
        entries[f"{prefix}val_img/{name}"] = image_bytes(val_grey(int(name.split(".")[0])))
    return entries


def write_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            # ZipInfo keeps the name exactly (ZipFile.write would strip "/" and "..").
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return path


def add_symlink(path: Path, name: str, points_to: str) -> None:
    """Append an entry that unzip tools would restore as a symbolic link."""
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, points_to)


def patch_central_record(path: Path, name: str, offset: int, fmt: str, value: int) -> None:
    """Overwrite a field of ``name``'s central directory record (what zipfile trusts when reading).

    Offsets per the zip specification: 8 flags, 10 compression method, 24 uncompressed size.
    """
    data = bytearray(path.read_bytes())
    record = data.index(b"PK\x01\x02")
    while True:
        name_len, extra_len, comment_len = struct.unpack("<HHH", data[record + 28: record + 34])
        if data[record + 46: record + 46 + name_len].decode() == name:
            struct.pack_into(fmt, data, record + offset, value)
            path.write_bytes(bytes(data))
            return
        record += 46 + name_len + extra_len + comment_len


def small_archive(path: Path, labels=(0, 1, 1, 0, 1, 1), val_numbers=(1, 2, 3), prefix: str = "faces/",
                  **kwargs) -> Path:
    return write_zip(path, exercise_entries(labels, val_numbers, prefix, **kwargs))


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders an interrupted atomic write would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".old")))


def project_params(**changes) -> dict:
    """The project's params.yaml with dotted keys changed: ``project_params(**{"train.epochs": 0})``."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    return params


def write_params(folder: Path, **changes) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(project_params(**changes), sort_keys=False), encoding="utf-8")
    return path


def assert_clean_failure(result, *expected: str) -> str:
    """Exit 1 and one ``error:`` line on stderr holding each of ``expected``, no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in files_under(folder)}


def refusal(data: Path, act) -> str:
    """Run ``act``, expecting a one-line FaceclsError that leaves the files under ``data`` as they
    were and no temporary file; the message."""
    before = snapshot(data)
    with pytest.raises(FaceclsError) as error:
        act()
    assert snapshot(data) == before
    assert leftovers(data) == []
    message = str(error.value)
    assert "\n" not in message
    return message


def checked(folder: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """``folder/faces.zip`` of ``entries``, through the check stage: the manifest's path."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = write_zip(folder / "faces.zip", entries, compression)
    write_manifest(folder / "data" / "manifest.json", check_archive(archive))
    return folder / "data" / "manifest.json"


def checked_archive(folder: Path, labels, compression: int = zipfile.ZIP_DEFLATED, **kwargs) -> Path:
    return checked(folder, exercise_entries(labels, **kwargs), compression)
