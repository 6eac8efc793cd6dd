"""Checking the exercise archive without extracting it (the check stage): any prefix works, and every
bad archive fails cleanly and harmlessly, with the same message from `facecls extract`."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from facecls.data import archive as archive_module
from facecls.data.extract import extract_archive
from facecls.data.manifest import check_archive, write_manifest
from tests.archives import (
    add_symlink,
    assert_clean_failure,
    exercise_entries,
    files_under,
    image_bytes,
    leftovers,
    patch_central_record,
    refusal,
    small_archive,
    write_params,
    write_zip,
)


def refused(archive: Path, data: Path) -> str:
    """Check and extract ``archive``, each expecting the same one-line FaceclsError that leaves
    ``data`` as it was and no temporary file; the message."""
    checked = refusal(data, lambda: write_manifest(data / "manifest.json", check_archive(archive)))
    extracted = refusal(data, lambda: extract_archive(archive, data / "raw"))
    assert checked == extracted
    return checked


@pytest.mark.parametrize("prefix", ["", "faces/", "ml_exercise/faces/"])
def test_any_prefix_gives_the_same_manifest_and_extraction(tmp_path, prefix):
    archive = small_archive(tmp_path / "faces.zip", labels=(0, 1, 1, 1), val_numbers=(1, 2), prefix=prefix)
    manifest = check_archive(archive)
    assert manifest["root"] == prefix and manifest["labels"] == "0111"
    assert manifest["train_img"]["names"] == [f"00000{n}.jpg" for n in (1, 2, 3, 4)]
    assert manifest["val_img"]["numbers"] == [1, 2]
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(f"{prefix}val_img/000002.jpg")
    assert (manifest["val_img"]["bytes"][1], manifest["val_img"]["crc32"][1]) == (info.file_size, info.CRC)
    summary = extract_archive(archive, tmp_path / "raw")
    assert files_under(tmp_path / "raw") == [
        "label_train.txt", "train_img/000001.jpg", "train_img/000002.jpg", "train_img/000003.jpg",
        "train_img/000004.jpg", "val_img/000001.jpg", "val_img/000002.jpg"]
    assert summary == {"archive": str(archive), "root": prefix or "(top level)", "train_images": 4,
                       "val_images": 2, "class_0": 1, "class_1": 3}


def test_macosx_junk_is_ignored(tmp_path):
    entries = exercise_entries((0, 1), prefix="faces/")
    # What macOS Finder adds: resource forks mirroring the tree, including a second train_img/.
    entries["__MACOSX/faces/train_img/._000001.jpg"] = b"\x00\x05\x16\x07junk"
    entries["__MACOSX/faces/._label_train.txt"] = b"\x00\x05\x16\x07junk"
    entries["faces/train_img/._000002.jpg"] = b"\x00\x05\x16\x07junk"
    archive = write_zip(tmp_path / "mac.zip", entries)
    assert check_archive(archive)["train_img"]["names"] == ["000001.jpg", "000002.jpg"]
    assert extract_archive(archive, tmp_path / "raw")["train_images"] == 2
    assert "__MACOSX" not in " ".join(files_under(tmp_path / "raw"))


def test_not_a_zip(tmp_path, previous):
    archive = tmp_path / "faces.zip"
    archive.write_text("train_img/000001.jpg\n")
    assert refused(archive, previous) == f"{archive}: not a zip archive, or a truncated one"


def test_truncated_zip(tmp_path, previous):
    whole = small_archive(tmp_path / "whole.zip").read_bytes()
    archive = tmp_path / "faces.zip"
    archive.write_bytes(whole[: len(whole) * 2 // 3])
    assert refused(archive, previous) == f"{archive}: not a zip archive, or a truncated one"


def test_missing_archive_is_named_with_the_parameter(tmp_path, previous):
    archive = tmp_path / "nowhere" / "faces.zip"
    assert refused(archive, previous) == f"{archive}: archive not found (set data.archive in params.yaml)"


def test_a_folder_instead_of_the_archive(tmp_path, previous):
    assert refused(tmp_path, previous) == f"{tmp_path}: is a folder, expected a .zip archive"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_archive(tmp_path, previous):
    archive = small_archive(tmp_path / "faces.zip")
    archive.chmod(0)
    assert refused(archive, previous) == f"{archive}: cannot read (Permission denied)"


def test_unreadable_archive_error_is_reported(tmp_path, previous, monkeypatch):
    # The same path as a real permission problem, reachable when the tests run as root.
    archive = small_archive(tmp_path / "faces.zip")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(archive))

    monkeypatch.setattr(zipfile, "ZipFile", denied)
    assert refused(archive, previous) == f"{archive}: cannot read (Permission denied)"


@pytest.mark.parametrize("evil", ["../escaped.txt", "faces/train_img/../../../escaped.txt", "/tmp/escaped.txt",
                                  "C:/escaped.txt", "..\\escaped.txt"])
def test_entries_escaping_the_target_are_refused(tmp_path, previous, evil):
    entries = exercise_entries((0, 1))
    entries[evil] = b"owned"
    archive = write_zip(tmp_path / "evil.zip", entries)
    assert refused(archive, previous) == f"{archive}: entry {evil!r} would be written outside the target folder"
    assert not (tmp_path / "escaped.txt").exists() and not (previous / "escaped.txt").exists()


@pytest.mark.parametrize(("name", "problem"), [
    ("faces/train_img/00\n3.jpg", "entry 'faces/train_img/00\\n3.jpg' has a control character in its name"),
    ("faces/\x1b[2Jval_img/1.jpg", "entry 'faces/\\x1b[2Jval_img/1.jpg' has a control character in its name"),
    ("", "an entry has an empty name"),
])
def test_names_no_message_could_show_on_one_line_are_refused(tmp_path, previous, name, problem):
    entries = exercise_entries((0, 1))
    entries[name] = image_bytes(0)
    archive = write_zip(tmp_path / "odd.zip", entries)
    assert refused(archive, previous) == f"{archive}: {problem}"


def test_symlink_entries_are_refused(tmp_path, previous):
    archive = small_archive(tmp_path / "link.zip", labels=(0, 1))
    add_symlink(archive, "faces/train_img/000003.jpg", "../../../../etc/passwd")
    assert refused(archive, previous) == f"{archive}: entry 'faces/train_img/000003.jpg' is a symbolic link, refused"


def test_an_entry_declaring_a_huge_size_is_refused(tmp_path, previous):
    entries = exercise_entries((0, 1))
    # 64 MiB of zeros deflate to about 64 kB: small on disk, huge once written out.
    entries["faces/train_img/000002.jpg"] = bytes(64 * 2**20)
    archive = write_zip(tmp_path / "bomb.zip", entries)
    assert archive.stat().st_size < 200_000
    assert refused(archive, previous) == (
        f"{archive}: entry 'faces/train_img/000002.jpg' declares {64 * 2**20} bytes, "
        "too large for a 64x64 image (decompression bomb?)")


def test_many_entries_declaring_too_much_in_total_are_refused(tmp_path, previous, monkeypatch):
    # Each entry passes the per-entry limits; together they are far beyond N small images.
    monkeypatch.setattr(archive_module, "MAX_TOTAL_SLACK", 2 * 2**20)
    labels = [1] * 12
    entries = exercise_entries(labels)
    for n in range(1, 13):
        entries[f"faces/train_img/{n:06d}.jpg"] = image_bytes(255) + bytes(300_000)
    archive = write_zip(tmp_path / "wide.zip", entries)
    message = refused(archive, previous)
    assert message.startswith(f"{archive}: declares 3 MiB uncompressed for 16 entries, far beyond 64x64 images")


@pytest.mark.parametrize(("offset", "value", "problem"), [
    # 99 is WinZip's AES: Python cannot decompress it.
    (10, 99, "uses compression method 99, which cannot be read (use deflate)"),
    (8, 1, "is encrypted; re-create the archive without a password"),
])
def test_an_entry_python_cannot_read_is_named(tmp_path, previous, offset, value, problem):
    archive = small_archive(tmp_path / "odd.zip")
    patch_central_record(archive, "faces/train_img/000002.jpg", offset, "<H", value)
    assert refused(archive, previous) == f"{archive}: entry 'faces/train_img/000002.jpg' {problem}"


def test_a_file_and_a_folder_of_the_same_name_are_refused(tmp_path, previous):
    entries = exercise_entries((0, 1))
    entries["faces/train_img/000001.jpg/000003.jpg"] = image_bytes(0)
    archive = write_zip(tmp_path / "clash.zip", entries)
    assert refused(archive, previous) == (
        f"{archive}: entry 'faces/train_img/000001.jpg/000003.jpg' clashes with another entry "
        "(a file and a folder of the same name)")


@pytest.mark.parametrize(("dropped", "message"), [
    ("train_img/", "no train_img/ folder in the archive"),
    ("val_img/", "missing faces/val_img/ (or it holds no files)"),
    ("label_train.txt", "missing faces/label_train.txt"),
])
def test_missing_parts_are_named(tmp_path, previous, dropped, message):
    entries = {k: v for k, v in exercise_entries((0, 1)).items() if not k.startswith(f"faces/{dropped}")}
    archive = write_zip(tmp_path / "part.zip", entries)
    assert refused(archive, previous) == f"{archive}: {message}"


def test_two_candidate_roots_are_refused(tmp_path, previous):
    entries = {**exercise_entries((0, 1), prefix="copy_a/"), **exercise_entries((1, 1), prefix="copy_b/")}
    archive = write_zip(tmp_path / "two.zip", entries)
    assert refused(archive, previous) == f"{archive}: several folders hold train_img/ (copy_a/, copy_b/); expected one"


@pytest.mark.parametrize(("label_text", "lines"), [("0\n1\n", 2), ("0\n1\n1\n0\n", 4)])
def test_label_count_must_match_the_train_images(tmp_path, previous, label_text, lines):
    archive = small_archive(tmp_path / "faces.zip", labels=(0, 1, 1), label_text=label_text)
    assert refused(archive, previous) == (
        f"{archive}: faces/label_train.txt has {lines} lines but faces/train_img/ holds 3 images")


def test_a_bad_label_line_names_the_entry_in_the_archive(tmp_path, previous):
    archive = small_archive(tmp_path / "faces.zip", labels=(0, 1, 1), label_text="0\n1\n2\n")
    assert refused(archive, previous) == f"{archive}: faces/label_train.txt: line 3 is '2', expected 0 or 1"


def test_a_number_without_a_label_line_is_refused(tmp_path, previous):
    # Five labels, five images, but numbered 1-4 and 6: image 6 has no line.
    archive = small_archive(tmp_path / "faces.zip", labels=(0, 1, 1, 1, 0),
                            train_names=[f"{n}.jpg" for n in (1, 2, 3, 4, 6)])
    assert refused(archive, previous) == (
        f"{archive}: entry 'faces/train_img/6.jpg': number 6 has no line in faces/label_train.txt (5 lines)")


@pytest.mark.parametrize(("folder", "name", "problem"), [
    ("val_img", "readme.txt", "not an image file (expected .jpg or .png)"),
    ("val_img", "face_2.jpg", "file name is not a number, so it cannot be ordered or labelled"),
    ("train_img", "2.jpg", "number 2 is used twice (also 000002.jpg)"),
])
def test_a_badly_named_image_is_named(tmp_path, previous, folder, name, problem):
    entries = exercise_entries((0, 1, 1, 1))
    if name == "2.jpg":  # a duplicate must not be a count mismatch first
        del entries["faces/train_img/000004.jpg"]
        entries["faces/label_train.txt"] = b"0\n1\n1\n"
    entries[f"faces/{folder}/{name}"] = image_bytes(0)
    archive = write_zip(tmp_path / "faces.zip", entries)
    assert refused(archive, previous) == f"{archive}: entry 'faces/{folder}/{name}': {problem}"


def test_check_stage_prints_counts_writes_a_small_manifest_and_fails_with_one_line(tmp_path, run_stage):
    small_archive(tmp_path / "faces.zip", labels=(0, 1, 1, 1, 0), val_numbers=(1, 2, 3), prefix="x/y/")
    write_params(tmp_path, **{"data.archive": "faces.zip"})
    done = run_stage("check", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "check: faces.zip (root x/y/): 5 train images (class 0: 2, class 1: 3), 3 val images\n"
    assert done.stderr == ""
    assert files_under(tmp_path / "data") == ["manifest.json"], "nothing is extracted"
    manifest = tmp_path / "data" / "manifest.json"
    assert json.loads(manifest.read_text())["labels"] == "01110"
    before = manifest.read_bytes()

    (tmp_path / "faces.zip").write_bytes(b"PK\x03\x04 not really")
    failed = run_stage("check", tmp_path)
    assert_clean_failure(failed, "faces.zip: not a zip archive")
    assert failed.stdout == ""
    assert manifest.read_bytes() == before
    assert leftovers(tmp_path / "data") == []


def test_the_manifest_stays_small(tmp_path):
    # 120,000 images make a manifest of a few MB: about 50 bytes an image, labels included.
    archive = small_archive(tmp_path / "faces.zip", labels=[1] * 2000, val_numbers=range(1, 401))
    write_manifest(tmp_path / "manifest.json", check_archive(archive))
    assert (tmp_path / "manifest.json").stat().st_size < 2400 * 52
