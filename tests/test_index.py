"""The index stage: labels line up with images, val order is numeric, the split is stratified and seeded."""

from __future__ import annotations

import csv
import errno
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from facecls.data import index as prepare
from facecls.data.archive import extract_archive
from facecls.data.index import build_index, decode_to_array, format_summary
from facecls.data.split import PARTS, TEST, TRAIN, TUNE, stratified_split
from facecls.errors import FaceclsError
from tests.archives import (
    SHARED_SAMPLE,
    assert_clean_failure,
    exercise_entries,
    image_bytes,
    leftovers,
    val_grey,
    write_params,
    write_tree,
)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def make_raw(folder: Path, labels, **kwargs) -> Path:
    return write_tree(folder, exercise_entries(labels, prefix="", **kwargs))


LABELS = [1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]  # line N labels image N


@pytest.fixture
def previous_prepared(tmp_path) -> Path:
    """A data/prepared from an earlier successful run, which a failing one must leave alone."""
    out = tmp_path / "data" / "prepared"
    build_index(make_raw(tmp_path / "earlier_raw", [0, 1, 1, 1]), out, 0.25, 0.25, 0)
    (out / "marker").write_text("earlier run")
    return out


def fails_harmlessly(raw: Path, out: Path) -> str:
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FaceclsError) as error:
        build_index(raw, out, 0.25, 0.25, 0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(out.parent) == []
    assert "\n" not in str(error.value)
    return str(error.value)


def test_unpadded_names_take_their_label_line(tmp_path):
    # Text order would put 10.jpg, 11.jpg, 12.jpg before 2.jpg and give them lines 2, 3, 4.
    names = [f"{n}.jpg" for n in range(1, 13)]
    raw = make_raw(tmp_path / "raw", LABELS, train_names=names)
    build_index(raw, tmp_path / "prepared", 0.25, 0.25, seed=0)
    rows = read_csv(tmp_path / "prepared" / "train_img.csv")
    images = np.load(tmp_path / "prepared" / "train_img.npy")
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    assert [int(r["number"]) for r in rows] == list(range(1, 13))
    assert [r["file"] for r in rows] == names
    assert [int(r["label"]) for r in rows] == LABELS
    # The pixels say which label each image was drawn for: black 0, white 1.
    drawn = (images.reshape(12, -1).mean(axis=1) > 128).astype(int)
    assert drawn.tolist() == LABELS


def test_val_order_is_numeric_and_gaps_are_reported(tmp_path):
    raw = make_raw(tmp_path / "raw", LABELS, val_names=["1.jpg", "2.jpg", "10.jpg", "9.jpg"])
    summary = build_index(raw, tmp_path / "prepared", 0.25, 0.25, seed=0)
    rows = read_csv(tmp_path / "prepared" / "val_img.csv")
    assert [(int(r["row"]), r["file"], int(r["number"])) for r in rows] == [
        (0, "1.jpg", 1), (1, "2.jpg", 2), (2, "9.jpg", 9), (3, "10.jpg", 10)]
    images = np.load(tmp_path / "prepared" / "val_img.npy")
    greys = images.reshape(4, -1).mean(axis=1)
    assert np.abs(greys - [val_grey(n) for n in (1, 2, 9, 10)]).max() < 2
    assert summary["val_img_missing_count"] == 6 and summary["val_img_missing_numbers"] == [3, 4, 5, 6, 7, 8]
    assert "warning: missing numbers in val_img: 6 (first: [3, 4, 5, 6, 7])" in format_summary(summary)


def test_summary_counts_each_class_in_each_part(tmp_path):
    summary = build_index(make_raw(tmp_path / "raw", LABELS, val_numbers=(1, 2, 3)), tmp_path / "out", 0.25, 0.25, 0)
    # 3 accessory faces give one to each part; the 9 others 2 to tune, 2 to test, 5 to train.
    assert summary == {"parts": {"train": {"n": 6, "class_0": 1}, "tune": {"n": 3, "class_0": 1},
                                 "test": {"n": 3, "class_0": 1}},
                       "val_img": 3, "val_img_missing_numbers": [], "val_img_missing_count": 0, "resized": 0}
    assert format_summary(summary).splitlines() == [
        "train         6 images, class 0:      1",
        "tune          3 images, class 0:      1",
        "test          3 images, class 0:      1",
        "val_img       3 images (unlabelled)"]


def test_png_and_odd_sizes_are_accepted_and_resizing_is_counted(tmp_path):
    raw = make_raw(tmp_path / "raw", [0, 1, 1])
    (raw / "train_img" / "000002.jpg").unlink()
    (raw / "train_img" / "000002.png").write_bytes(image_bytes(255, fmt="PNG"))
    (raw / "train_img" / "000003.jpg").write_bytes(image_bytes(255, size=100))
    (raw / "val_img" / "000001.jpg").write_bytes(image_bytes(val_grey(1), mode="L", size=32))
    summary = build_index(raw, tmp_path / "out", 0.34, 0.34, 0)
    assert summary["resized"] == 2
    assert "resized to 64x64: 2 images" in format_summary(summary)
    images = np.load(tmp_path / "out" / "train_img.npy")
    assert images.reshape(3, -1).mean(axis=1).round().tolist() == [0, 255, 255]


def test_a_number_without_a_label_line_is_refused(tmp_path, previous_prepared):
    # Five labels, five images, but numbered 1-4 and 6: image 6 has no line.
    raw = make_raw(tmp_path / "raw", [0, 1, 1, 1, 0], train_names=[f"{n}.jpg" for n in (1, 2, 3, 4, 6)])
    assert fails_harmlessly(raw, previous_prepared) == (
        f"{raw / 'train_img' / '6.jpg'}: number 6 has no line in label_train.txt (5 lines)")


def test_label_count_must_match(tmp_path, previous_prepared):
    raw = make_raw(tmp_path / "raw", [0, 1, 1, 1], label_text="0\n1\n1\n")
    assert fails_harmlessly(raw, previous_prepared) == (
        f"{raw / 'label_train.txt'}: 3 lines but train_img/ holds 4 images")


@pytest.mark.parametrize(("folder", "name", "content", "problem"), [
    ("train_img", "000002.jpg", b"", "empty file (0 bytes)"),
    ("train_img", "000002.jpg", image_bytes(0)[:300], "corrupt or truncated image ("),
    ("val_img", "000002.jpg", b"<html>not found</html>", "not an image this pipeline can read"),
    ("val_img", "readme.txt", b"faces", "not an image file (expected .jpg or .png)"),
    ("val_img", "face_2.jpg", image_bytes(0), "file name is not a number"),
    ("train_img", "2.jpg", image_bytes(0), "number 2 is used twice"),
])
def test_a_bad_image_file_is_named(tmp_path, previous_prepared, folder, name, content, problem):
    raw = make_raw(tmp_path / "raw", [0, 1, 1, 1])
    if name == "2.jpg":  # a duplicate must not be a count mismatch first
        (raw / "train_img" / "000004.jpg").unlink()
        (raw / "label_train.txt").write_text("0\n1\n1\n")
    (raw / folder / name).write_bytes(content)
    message = fails_harmlessly(raw, previous_prepared)
    assert message.startswith(f"{raw / folder}/") and problem in message
    assert name in message


def test_stratified_split_keeps_class_proportions_in_each_part():
    labels = np.array([0] * 100 + [1] * 900)
    part = stratified_split(labels, 0.1, 0.2, seed=0)
    for code, share in ((TUNE, 0.1), (TEST, 0.2), (TRAIN, 0.7)):
        assert ((part == code) & (labels == 0)).sum() == 100 * share
        assert ((part == code) & (labels == 1)).sum() == 900 * share


def test_stratified_split_gives_each_part_both_classes_when_it_can():
    part = stratified_split(np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), 0.05, 0.05, seed=0)
    assert sorted(part[:3]) == [TRAIN, TUNE, TEST] and {TRAIN, TUNE, TEST} <= set(part[3:])
    assert set(stratified_split(np.array([0, 0, 1, 1, 1]), 0.4, 0.4, seed=0)[:2]) <= {TRAIN, TUNE, TEST}


def test_split_is_seeded(tmp_path):
    labels = np.array([0] * 30 + [1] * 70)
    assert np.array_equal(stratified_split(labels, 0.1, 0.1, 5), stratified_split(labels, 0.1, 0.1, 5))
    assert not np.array_equal(stratified_split(labels, 0.1, 0.1, 5), stratified_split(labels, 0.1, 0.1, 6))
    # And through the stage's own output.
    raw = make_raw(tmp_path / "raw", LABELS)
    splits = []
    for seed, out in ((1, "a"), (1, "b"), (2, "c")):
        build_index(raw, tmp_path / out, 0.25, 0.25, seed)
        splits.append([r["part"] for r in read_csv(tmp_path / out / "train_img.csv")])
    assert set(splits[0]) == set(PARTS)
    assert splits[0] == splits[1] != splits[2]


def noisy_images(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    paths = []
    for i in range(1, n + 1):
        # Mixed sizes and formats so both paths also resize and convert.
        size = 64 if i % 5 else 48
        paths.append(folder / f"{i}.{'png' if i % 3 else 'jpg'}")
        paths[-1].write_bytes(image_bytes(rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                                          fmt="PNG" if i % 3 else "JPEG"))
    return paths


def test_parallel_decoding_gives_the_serial_array(tmp_path, monkeypatch):
    paths = noisy_images(tmp_path / "img", 300)
    serial_resized = decode_to_array(paths, tmp_path / "serial.npy", "serial", workers=1)
    monkeypatch.setattr(prepare, "PARALLEL_FROM", 10)
    monkeypatch.setattr(prepare, "CHUNK", 64)  # several chunks, so both workers take part
    pools = []

    class CountedPool(ProcessPoolExecutor):
        def __init__(self, workers):
            pools.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(prepare, "ProcessPoolExecutor", CountedPool)
    parallel_resized = decode_to_array(paths, tmp_path / "parallel.npy", "parallel", workers=2)
    assert pools == [2]
    assert serial_resized == parallel_resized == 60
    serial, parallel = np.load(tmp_path / "serial.npy"), np.load(tmp_path / "parallel.npy")
    assert serial.shape == (300, 64, 64, 3) and np.array_equal(serial, parallel)


def test_an_error_in_a_worker_is_a_clean_error_naming_the_file(tmp_path, monkeypatch):
    paths = noisy_images(tmp_path / "img", 200)
    paths[150].write_bytes(b"\xff\xd8\xff\xe0 truncated")
    monkeypatch.setattr(prepare, "PARALLEL_FROM", 10)
    monkeypatch.setattr(prepare, "CHUNK", 32)
    with pytest.raises(FaceclsError) as error:
        decode_to_array(paths, tmp_path / "out.npy", "parallel", workers=2)
    assert str(error.value).startswith(f"{paths[150]}: ")


def test_a_full_disk_while_indexing_keeps_the_previous_output(tmp_path, previous_prepared, monkeypatch):
    raw = make_raw(tmp_path / "raw", LABELS)
    real_write_csv = prepare._write_csv

    def disk_fills_up(path, header, rows):
        real_write_csv(path, header, list(rows)[:2])  # half a file is on disk...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...when the disk is full

    monkeypatch.setattr(prepare, "_write_csv", disk_fills_up)
    assert fails_harmlessly(raw, previous_prepared) == (
        f"{previous_prepared}: cannot write ({os.strerror(errno.ENOSPC)})")


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate on this system")
def test_space_for_the_arrays_is_reserved_before_decoding(tmp_path, previous_prepared, monkeypatch):
    # A memory-mapped write to a full disk kills the process with SIGBUS: it must fail before that.
    raw = make_raw(tmp_path / "raw", LABELS)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    assert fails_harmlessly(raw, previous_prepared) == (
        f"{previous_prepared}: cannot write ({os.strerror(errno.ENOSPC)})")


def test_index_stage_prints_the_summary_and_fails_with_one_line(tmp_path, run_stage):
    make_raw(tmp_path / "data" / "raw", LABELS, val_numbers=(1, 2, 4))
    write_params(tmp_path, **{"split.tune_fraction": 0.25, "split.test_fraction": 0.25, "split.seed": 0})
    done = run_stage("index", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "train         6 images, class 0:      1",
        "tune          3 images, class 0:      1",
        "test          3 images, class 0:      1",
        "val_img       3 images (unlabelled)",
        "warning: missing numbers in val_img: 1 (first: [3]); label_val.txt follows numeric order"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "data" / "prepared").iterdir()}

    broken = tmp_path / "data" / "raw" / "train_img" / "000005.jpg"
    broken.write_bytes(broken.read_bytes()[:200])
    failed = run_stage("index", tmp_path)
    assert_clean_failure(failed, "data/raw/train_img/000005.jpg: corrupt or truncated image")
    assert {p.name: p.read_bytes() for p in (tmp_path / "data" / "prepared").iterdir()} == before
    assert leftovers(tmp_path / "data") == []


@pytest.mark.skipif(not SHARED_SAMPLE.exists(), reason=f"shared sample {SHARED_SAMPLE} is absent")
def test_the_shared_sample_of_real_faces(tmp_path):
    unzipped = extract_archive(SHARED_SAMPLE, tmp_path / "raw")
    assert unzipped == {"archive": str(SHARED_SAMPLE), "root": "ml_exercise_faces/", "train_images": 2500,
                        "val_images": 500, "class_0": 264, "class_1": 2236}
    summary = build_index(tmp_path / "raw", tmp_path / "prepared", 0.1, 0.1, 42)
    assert summary["parts"] == {"train": {"n": 2000, "class_0": 212}, "tune": {"n": 250, "class_0": 26},
                                "test": {"n": 250, "class_0": 26}}
    assert summary["val_img"] == 500 and summary["resized"] == 0 and summary["val_img_missing_count"] == 0
    assert np.load(tmp_path / "prepared" / "train_img.npy", mmap_mode="r").shape == (2500, 64, 64, 3)
    assert np.load(tmp_path / "prepared" / "val_img.npy", mmap_mode="r").shape == (500, 64, 64, 3)
