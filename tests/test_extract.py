"""`facecls extract` and every read of an entry's bytes (index, extract): the folder is replaced
whole or not at all, and an entry whose bytes are not what the directory declares is named."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from facecls.data import extract as extract_module
from facecls.data.extract import extract_archive
from facecls.data.index import build_index
from facecls.data.manifest import check_archive, write_manifest
from tests.archives import (
    exercise_entries,
    files_under,
    leftovers,
    patch_central_record,
    refusal,
    small_archive,
    write_zip,
)


def refused_when_read(archive: Path, data: Path, tmp_path: Path) -> str:
    """An archive whose problem is in the bytes of an entry: the check passes (it reads no image),
    index and extract refuse it with the same message, leaving ``data`` as it was."""
    manifest = tmp_path / "fresh" / "manifest.json"
    write_manifest(manifest, check_archive(archive))
    indexed = refusal(data, lambda: build_index(manifest, data / "prepared", 0.25, 0))
    extracted = refusal(data, lambda: extract_archive(archive, data / "raw"))
    assert indexed == extracted
    return indexed


def test_extraction_replaces_the_previous_one_whole(tmp_path, previous):
    extract_archive(small_archive(tmp_path / "new.zip", labels=(1, 1)), previous / "raw")
    assert not (previous / "raw" / "marker").exists()
    assert files_under(previous / "raw" / "train_img") == ["000001.jpg", "000002.jpg"]
    assert leftovers(previous) == []


def test_damaged_entry_is_named(tmp_path, previous):
    entries = exercise_entries((0, 1, 1))
    archive = write_zip(tmp_path / "faces.zip", entries, compression=zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    # Flip bytes inside the stored JPEG of train image 2: the CRC no longer matches.
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("faces/train_img/000002.jpg")
    body = info.header_offset + 30 + len(info.filename) + 100
    data[body: body + 8] = bytes(8)
    archive.write_bytes(bytes(data))
    assert refused_when_read(archive, previous, tmp_path) == (
        f"{archive}: entry 'faces/train_img/000002.jpg' is damaged "
        "(Bad CRC-32 for file 'faces/train_img/000002.jpg')")


# Rewrite the central directory so that 3 MiB of zeros declare 1 kB: reading stops there, and
# the CRC of what was read gives the lie away. Declaring 0 bytes too: zlib takes a limit of 0
# bytes as no limit, so a 0-byte entry must not be inflated at all.
@pytest.mark.parametrize("declared", [1000, 0])
def test_an_entry_inflating_beyond_its_declared_size_stops_there(tmp_path, previous, declared):
    entries = exercise_entries((0, 1))
    entries["faces/train_img/000002.jpg"] = bytes(3 * 2**20)
    archive = write_zip(tmp_path / "liar.zip", entries)
    patch_central_record(archive, "faces/train_img/000002.jpg", 24, "<I", declared)
    assert refused_when_read(archive, previous, tmp_path) == (
        f"{archive}: entry 'faces/train_img/000002.jpg' is damaged "
        "(Bad CRC-32 for file 'faces/train_img/000002.jpg')")


def test_a_full_disk_mid_extraction_keeps_the_previous_output(tmp_path, previous, monkeypatch):
    archive = small_archive(tmp_path / "faces.zip")
    written = []
    real_open = open

    class FillingFile:
        """Accepts a few writes, then fails the way a full disk does."""

        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            written.append(len(data))
            if len(written) > 3:
                raise OSError(28, "No space left on device")
            return self.file.write(data)

    monkeypatch.setattr(extract_module, "open", FillingFile, raising=False)
    target = previous / "raw"
    assert refusal(previous, lambda: extract_archive(archive, target)) == (
        f"{target}: cannot write (No space left on device)")
    assert len(written) == 4
