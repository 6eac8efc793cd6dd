"""The index stage: labels line up with images, val order is numeric, the split is stratified and
seeded, and every image is decoded straight from the archive (the decoder: test_decode.py)."""

from __future__ import annotations

import csv
import errno
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from facecls.data import index as indexing
from facecls.data.index import build_index, format_summary
from facecls.data.manifest import check_archive, write_manifest
from facecls.data.split import PARTS, TEST, TRAIN, split_settings, stratified_split
from facecls.errors import FaceclsError
from tests.archives import (
    SHARED_SAMPLE,
    assert_clean_failure,
    checked,
    checked_archive,
    exercise_entries,
    image_bytes,
    leftovers,
    val_grey,
    write_params,
    write_zip,
)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


LABELS = [1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]  # line N labels image N


@pytest.fixture
def previous_prepared(tmp_path) -> Path:
    """A data/prepared from an earlier successful run, which a failing one must leave alone."""
    out = tmp_path / "data" / "prepared"
    build_index(checked_archive(tmp_path / "earlier", [0, 1, 1, 1]), out, 0.25, 0)
    (out / "marker").write_text("earlier run")
    return out


def fails_harmlessly(manifest: Path, out: Path) -> str:
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FaceclsError) as error:
        build_index(manifest, out, 0.25, 0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(out.parent) == []
    assert "\n" not in str(error.value)
    return str(error.value)


def test_unpadded_names_take_their_label_line(tmp_path):
    # Text order would put 10.jpg, 11.jpg, 12.jpg before 2.jpg and give them lines 2, 3, 4.
    names = [f"{n}.jpg" for n in range(1, 13)]
    build_index(checked_archive(tmp_path, LABELS, train_names=names), tmp_path / "prepared", 0.25, seed=0)
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
    manifest = checked_archive(tmp_path, LABELS, val_names=["1.jpg", "2.jpg", "10.jpg", "9.jpg"])
    summary = build_index(manifest, tmp_path / "prepared", 0.25, seed=0)
    rows = read_csv(tmp_path / "prepared" / "val_img.csv")
    assert [(int(r["row"]), r["file"], int(r["number"])) for r in rows] == [
        (0, "1.jpg", 1), (1, "2.jpg", 2), (2, "9.jpg", 9), (3, "10.jpg", 10)]
    images = np.load(tmp_path / "prepared" / "val_img.npy")
    greys = images.reshape(4, -1).mean(axis=1)
    assert np.abs(greys - [val_grey(n) for n in (1, 2, 9, 10)]).max() < 2
    assert summary["val_img_missing_count"] == 6 and summary["val_img_missing_numbers"] == [3, 4, 5, 6, 7, 8]
    assert "warning: missing numbers in val_img: 6 (first: [3, 4, 5, 6, 7])" in format_summary(summary)


def test_summary_counts_each_class_in_each_part(tmp_path):
    summary = build_index(checked_archive(tmp_path, LABELS), tmp_path / "out", 0.25, 0)
    # 3 accessory faces give one to test; the 9 others 2 to test, 7 to train.
    assert summary == {"fold": 0, "parts": {"train": {"n": 9, "class_0": 2}, "test": {"n": 3, "class_0": 1}},
                       "val_img": 3, "val_img_missing_numbers": [], "val_img_missing_count": 0, "resized": 0}
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    assert format_summary(summary).splitlines() == [
        "train         9 images, class 0:      2",
        "test          3 images, class 0:      1",
        "val_img       3 images (unlabelled)"]


def test_png_and_odd_sizes_are_accepted_and_resizing_is_counted(tmp_path):
    entries = exercise_entries([0, 1, 1])
    del entries["faces/train_img/000002.jpg"]
    entries["faces/train_img/000002.png"] = image_bytes(255, fmt="PNG")
    entries["faces/train_img/000003.jpg"] = image_bytes(255, size=100)
    entries["faces/val_img/000001.jpg"] = image_bytes(val_grey(1), mode="L", size=32)
    summary = build_index(checked(tmp_path, entries), tmp_path / "out", 0.34, 0)
    assert summary["resized"] == 2
    assert "resized to 64x64: 2 images" in format_summary(summary)
    images = np.load(tmp_path / "out" / "train_img.npy")
    assert images.reshape(3, -1).mean(axis=1).round().tolist() == [0, 255, 255]


@pytest.mark.parametrize(("folder", "content", "problem"), [
    ("train_img", b"", "empty file (0 bytes)"),
    ("train_img", image_bytes(0)[:300], "corrupt or truncated image ("),
    ("val_img", b"<html>not found</html>", "not an image this pipeline can read"),
])
def test_a_bad_image_is_named_by_its_entry(tmp_path, previous_prepared, folder, content, problem):
    entries = exercise_entries([0, 1, 1, 1])
    entries[f"faces/{folder}/000002.jpg"] = content
    message = fails_harmlessly(checked(tmp_path, entries), previous_prepared)
    assert message.startswith(f"{tmp_path / 'faces.zip'}: entry 'faces/{folder}/000002.jpg': {problem}")


def test_an_archive_changed_since_the_check_is_refused(tmp_path, previous_prepared):
    manifest = checked_archive(tmp_path, [0, 1, 1, 1], zipfile.ZIP_STORED)
    entries = exercise_entries([0, 1, 1, 1])
    changed = bytearray(entries["faces/train_img/000003.jpg"])
    changed[200] ^= 0xFF  # stored, so the archive keeps its size: only the CRC tells
    entries["faces/train_img/000003.jpg"] = bytes(changed)
    archive = write_zip(tmp_path / "faces.zip", entries, zipfile.ZIP_STORED)
    assert fails_harmlessly(manifest, previous_prepared) == (
        f"{archive}: entry 'faces/train_img/000003.jpg' is damaged (Bad CRC-32 for file 'faces/train_img/000003.jpg')")
    entries["faces/train_img/000003.jpg"] = image_bytes(255, size=32)
    write_zip(tmp_path / "faces.zip", entries)
    assert fails_harmlessly(manifest, previous_prepared) == (
        f"{manifest}: describes another archive than {archive} (its size changed); "
        "run the check stage again (dvc repro check)")


@pytest.mark.parametrize("text", [None, "{not json", '{"format": 1}', "[]"])
def test_a_missing_or_foreign_manifest_is_named(tmp_path, previous_prepared, text):
    manifest = tmp_path / "data" / "manifest.json"
    if text is not None:
        manifest.write_text(text)
    message = fails_harmlessly(manifest, previous_prepared)
    expected = "not found (run the check stage first" if text is None else "not a manifest this version"
    assert message.startswith(f"{manifest}: {expected}")


def test_stratified_split_keeps_class_proportions_in_each_part():
    labels = np.array([0] * 100 + [1] * 900)
    part = stratified_split(labels, 0.2, seed=0)
    for code, share in ((TEST, 0.2), (TRAIN, 0.8)):
        assert ((part == code) & (labels == 0)).sum() == 100 * share
        assert ((part == code) & (labels == 1)).sum() == 900 * share


def test_stratified_split_gives_each_part_both_classes_when_it_can():
    part = stratified_split(np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1]), 0.05, seed=0)
    assert sorted(part[:3]) == [TRAIN, TRAIN, TEST] and {TRAIN, TEST} <= set(part[3:])
    # Two of each class stay in train, for the cross-validation folds.
    part = stratified_split(np.array([0, 0, 0, 1, 1, 1]), 0.9, seed=0)
    assert sorted(part[:3]) == sorted(part[3:]) == [TRAIN, TRAIN, TEST]


def test_split_is_seeded(tmp_path):
    labels = np.array([0] * 30 + [1] * 70)
    assert np.array_equal(stratified_split(labels, 0.1, 5), stratified_split(labels, 0.1, 5))
    assert not np.array_equal(stratified_split(labels, 0.1, 5), stratified_split(labels, 0.1, 6))
    # And through the stage's own output.
    manifest = checked_archive(tmp_path, LABELS)
    splits = []
    for seed, out in ((1, "a"), (1, "b"), (2, "c")):
        build_index(manifest, tmp_path / out, 0.25, seed)
        splits.append([r["part"] for r in read_csv(tmp_path / out / "train_img.csv")])
    assert set(splits[0]) == {PARTS[TRAIN], PARTS[TEST]}
    assert splits[0] == splits[1] != splits[2]


def test_a_full_disk_while_indexing_keeps_the_previous_output(tmp_path, previous_prepared, monkeypatch):
    manifest = checked_archive(tmp_path, LABELS)
    real_write_csv = indexing._write_csv

    def disk_fills_up(path, header, rows):
        real_write_csv(path, header, list(rows)[:2])  # half a file is on disk...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ...when the disk is full

    monkeypatch.setattr(indexing, "_write_csv", disk_fills_up)
    assert fails_harmlessly(manifest, previous_prepared) == (
        f"{previous_prepared}: cannot write ({os.strerror(errno.ENOSPC)})")


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate on this system")
def test_space_for_the_arrays_is_reserved_before_decoding(tmp_path, previous_prepared, monkeypatch):
    # A memory-mapped write to a full disk kills the process with SIGBUS: it must fail before that.
    manifest = checked_archive(tmp_path, LABELS)

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    assert fails_harmlessly(manifest, previous_prepared) == (
        f"{previous_prepared}: cannot write ({os.strerror(errno.ENOSPC)})")


def test_index_stage_prints_the_summary_and_fails_with_one_line(tmp_path, run_stage):
    entries = exercise_entries(LABELS, val_numbers=(1, 2, 4))
    checked(tmp_path, entries)
    write_params(tmp_path, **{"data.archive": "faces.zip", "split.test_fraction": 0.25, "split.seed": 0})
    done = run_stage("index", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "train         9 images, class 0:      2",
        "test          3 images, class 0:      1",
        "val_img       3 images (unlabelled)",
        "warning: missing numbers in val_img: 1 (first: [3]); label_val.txt follows numeric order"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "data" / "prepared").iterdir()}

    entries["faces/train_img/000005.jpg"] = entries["faces/train_img/000005.jpg"][:200]
    checked(tmp_path, entries)
    failed = run_stage("index", tmp_path)
    assert_clean_failure(failed, "faces.zip: entry 'faces/train_img/000005.jpg': corrupt or truncated image")
    assert {p.name: p.read_bytes() for p in (tmp_path / "data" / "prepared").iterdir()} == before
    assert leftovers(tmp_path / "data") == []


@pytest.mark.skipif(not SHARED_SAMPLE.exists(), reason=f"shared sample {SHARED_SAMPLE} is absent")
def test_the_shared_sample_of_real_faces(tmp_path):
    manifest = check_archive(SHARED_SAMPLE)
    assert (manifest["root"], manifest["labels"].count("0"), manifest["labels"].count("1")) == (
        "ml_exercise_faces/", 264, 2236)
    assert len(manifest["train_img"]["names"]) == 2500 and len(manifest["val_img"]["names"]) == 500
    write_manifest(tmp_path / "manifest.json", manifest)
    summary = build_index(tmp_path / "manifest.json", tmp_path / "prepared", 0.1, 42)
    assert summary["parts"] == {"train": {"n": 2250, "class_0": 238}, "test": {"n": 250, "class_0": 26}}
    assert summary["val_img"] == 500 and summary["resized"] == 0 and summary["val_img_missing_count"] == 0
    assert np.load(tmp_path / "prepared" / "train_img.npy", mmap_mode="r").shape == (2500, 64, 64, 3)
    assert np.load(tmp_path / "prepared" / "val_img.npy", mmap_mode="r").shape == (500, 64, 64, 3)


def test_folds_rotate_the_test_part_over_disjoint_faces():
    labels = np.array([0] * 100 + [1] * 900)
    folds = [stratified_split(labels, 0.1, seed=3, fold=k) for k in range(10)]
    assert np.array_equal(folds[0], stratified_split(labels, 0.1, seed=3)), "fold 0 is the plain split"
    tests = [set(np.flatnonzero(part == TEST)) for part in folds]
    assert all(len(t) == 100 for t in tests) and len(set().union(*tests)) == 1000, "every face is tested once"
    for part in folds:  # each fold keeps the proportions
        assert ((part == TEST) & (labels == 0)).sum() == 10


@pytest.mark.parametrize("fold", [-1, 10, 1.5, "1"])
def test_a_fold_without_a_test_part_of_its_own_is_refused(fold):
    params = {"split": {"test_fraction": 0.1, "seed": 0, "fold": fold}}
    with pytest.raises(FaceclsError, match=r"split.fold must be an integer from 0 to 9"):
        split_settings(params)
