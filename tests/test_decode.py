"""Decoding many images into one array: from the archive or from files, serially or by a pool of
workers, the same pixels; every compression zipfile writes reads the same; a worker's failure is
one clean error naming the image."""

from __future__ import annotations

import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facecls.data import decode as decoding
from facecls.data.archive import ArchiveSource
from facecls.data.decode import FileSource, decode_to_array
from facecls.data.index import build_index
from facecls.data.manifest import load_manifest
from facecls.errors import FaceclsError
from tests.archives import checked, exercise_entries, image_bytes

LABELS = [1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_every_compression_zipfile_writes_gives_the_same_arrays(tmp_path, compression):
    entries = exercise_entries(LABELS, val_numbers=range(1, 8))
    build_index(checked(tmp_path / "stored", entries, zipfile.ZIP_STORED), tmp_path / "stored_out", 0.25, 0)
    build_index(checked(tmp_path / "packed", entries, compression), tmp_path / "packed_out", 0.25, 0)
    for name in ("train_img.npy", "val_img.npy", "train_img.csv", "val_img.csv"):
        assert (tmp_path / "stored_out" / name).read_bytes() == (tmp_path / "packed_out" / name).read_bytes(), name


def noisy_entries(n: int) -> dict[str, bytes]:
    """An exercise archive's members whose ``n`` train images are noise of mixed sizes and formats,
    so that decoding also resizes and converts."""
    rng = np.random.default_rng(0)
    entries = exercise_entries([1] * n)
    for i in range(1, n + 1):
        size = 64 if i % 5 else 48
        del entries[f"faces/train_img/{i:06d}.jpg"]
        entries[f"faces/train_img/{i}.{'png' if i % 3 else 'jpg'}"] = image_bytes(
            rng.integers(0, 256, (size, size, 3), dtype=np.uint8), fmt="PNG" if i % 3 else "JPEG")
    return entries


def train_entries(manifest: Path):
    loaded = load_manifest(manifest)
    return ArchiveSource(str(loaded.archive)), loaded.entries("train_img")


def in_parallel(monkeypatch, chunk: int) -> list[int]:
    """Decode in a pool from 10 images on, in chunks of ``chunk``; the list of pools started."""
    monkeypatch.setattr(decoding, "PARALLEL_FROM", 10)
    monkeypatch.setattr(decoding, "CHUNK", chunk)  # several chunks, so both workers take part
    pools = []

    class CountedPool(ProcessPoolExecutor):
        def __init__(self, workers, **kwargs):
            pools.append(workers)
            super().__init__(workers, **kwargs)

    monkeypatch.setattr(decoding, "ProcessPoolExecutor", CountedPool)
    return pools


def test_parallel_decoding_gives_the_serial_array_from_the_archive_and_from_files(tmp_path, monkeypatch):
    entries = noisy_entries(300)
    source, items = train_entries(checked(tmp_path, entries))
    serial_resized = decode_to_array(source, items, tmp_path / "serial.npy", "serial", workers=1)
    pools = in_parallel(monkeypatch, 64)
    parallel_resized = decode_to_array(source, items, tmp_path / "parallel.npy", "parallel", workers=2)
    files = []
    for entry in items:  # the same images as files, as `facecls label` reads them
        files.append(tmp_path / "files" / entry.name.split("/")[-1])
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_bytes(entries[entry.name])
    from_files = decode_to_array(FileSource(), [str(p) for p in files], tmp_path / "files.npy", "files", workers=2)
    assert pools == [2, 2]
    assert serial_resized == parallel_resized == from_files == 60
    serial = np.load(tmp_path / "serial.npy")
    assert serial.shape == (300, 64, 64, 3)
    assert np.array_equal(serial, np.load(tmp_path / "parallel.npy"))
    assert np.array_equal(serial, np.load(tmp_path / "files.npy"))


def test_an_error_in_a_worker_is_a_clean_error_naming_the_entry(tmp_path, monkeypatch):
    entries = noisy_entries(200)
    entries["faces/train_img/151.png"] = b"\xff\xd8\xff\xe0 truncated"
    source, items = train_entries(checked(tmp_path, entries))
    in_parallel(monkeypatch, 32)
    with pytest.raises(FaceclsError) as error:
        decode_to_array(source, items, tmp_path / "out.npy", "parallel", workers=2)
    assert str(error.value).startswith(f"{tmp_path / 'faces.zip'}: entry 'faces/train_img/151.png': ")


def dies(source, items, array_path, start):
    os._exit(9)  # as a worker the OOM killer picks


def test_a_worker_killed_midway_is_one_clean_error(tmp_path, monkeypatch):
    source, items = train_entries(checked(tmp_path, noisy_entries(40)))
    in_parallel(monkeypatch, 16)
    monkeypatch.setattr(decoding, "_decode_chunk", dies)
    with pytest.raises(FaceclsError) as error:
        decode_to_array(source, items, tmp_path / "out.npy", "parallel", workers=2)
    assert str(error.value) == f"{tmp_path / 'out.npy'}: a decoding process was killed (out of memory?)"
