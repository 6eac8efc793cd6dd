"""The demo archive generator: committed bytes, exercise layout, labels, seeding."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecls.errors import FaceclsError
from facecls.tools.demo import archive as demo_archive
from facecls.tools.demo.__main__ import main
from facecls.tools.demo.accessories import ACCESSORIES
from facecls.tools.demo.archive import DEFAULT_TRAIN, DEFAULT_VAL, write_demo_archive
from facecls.tools.demo.faces import draw_face

REPO = Path(__file__).parents[1]
COMMITTED_ZIP = REPO / "data" / "demo-faces.zip"
COMMITTED_TRUTH = REPO / "data" / "demo-faces-val-truth.txt"


@pytest.fixture(scope="module")
def default_archive(tmp_path_factory) -> tuple[Path, Path, dict]:
    """The default archive, drawn once (a few seconds) for the tests below."""
    folder = tmp_path_factory.mktemp("demo")
    archive, truth = folder / "demo-faces.zip", folder / "truth.txt"
    counts = write_demo_archive(archive, truth_path=truth)
    return archive, truth, counts


def labels_in(text: str) -> list[int]:
    assert text.endswith("\n") and "\r" not in text
    lines = text[:-1].split("\n")
    assert set(lines) <= {"0", "1"}
    return [int(line) for line in lines]


def test_regenerating_gives_the_committed_bytes(default_archive):
    archive, truth, _ = default_archive
    hint = "drawing changed (or Pillow's JPEG/drawing code did): rerun `python -m facecls.tools.demo` and commit"
    assert archive.read_bytes() == COMMITTED_ZIP.read_bytes(), hint
    assert truth.read_bytes() == COMMITTED_TRUTH.read_bytes(), hint


def test_layout_labels_and_counts(default_archive):
    archive, truth, counts = default_archive
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        train_labels = labels_in(zipped.read("demo_faces/label_train.txt").decode("ascii"))
    expected = (
        ["demo_faces/", "demo_faces/train_img/"]
        + [f"demo_faces/train_img/{i:06d}.jpg" for i in range(1, DEFAULT_TRAIN + 1)]
        + ["demo_faces/label_train.txt", "demo_faces/val_img/"]
        + [f"demo_faces/val_img/{i:06d}.jpg" for i in range(1, DEFAULT_VAL + 1)]
    )
    assert names == expected
    val_labels = labels_in(truth.read_text(encoding="ascii"))
    assert (len(train_labels), len(val_labels)) == (DEFAULT_TRAIN, DEFAULT_VAL)
    for split, labels in (("train", train_labels), ("val", val_labels)):
        assert counts[split] == {0: labels.count(0), 1: labels.count(1)}
        assert 0.08 <= labels.count(0) / len(labels) <= 0.16


def test_images_are_64px_rgb_jpegs(default_archive):
    archive, _, _ = default_archive
    with zipfile.ZipFile(archive) as zipped:
        photos = [name for name in zipped.namelist() if name.endswith(".jpg")]
        for name in photos[::97] + photos[-1:]:
            with Image.open(io.BytesIO(zipped.read(name))) as photo:
                assert (photo.format, photo.mode, photo.size) == ("JPEG", "RGB", (64, 64)), name


def test_small_archive_starts_like_the_big_one(tmp_path):
    small = tmp_path / "small.zip"
    counts = write_demo_archive(small, n_train=5, n_val=3, truth_path=tmp_path / "truth.txt")
    assert sum(counts["train"].values()) == 5 and sum(counts["val"].values()) == 3
    with zipfile.ZipFile(small) as little, zipfile.ZipFile(COMMITTED_ZIP) as big:
        for name in little.namelist():
            if name.endswith(".jpg"):
                assert little.read(name) == big.read(name), name
        small_labels = little.read("demo_faces/label_train.txt").decode()
        assert big.read("demo_faces/label_train.txt").decode().startswith(small_labels)
    assert COMMITTED_TRUTH.read_text().startswith((tmp_path / "truth.txt").read_text())


def test_seed_changes_the_archive_and_repeats_exactly(tmp_path):
    paths = [tmp_path / f"{name}.zip" for name in ("first", "again", "other")]
    for path, seed in zip(paths, (7, 7, 8)):
        write_demo_archive(path, n_train=4, n_val=2, seed=seed)
    first, again, other = (path.read_bytes() for path in paths)
    assert first == again
    assert first != other


def test_every_accessory_draws_a_face():
    for accessory in (None, *ACCESSORIES):
        photo = draw_face(np.random.default_rng(3), accessory)
        assert (photo.mode, photo.size) == ("RGB", (64, 64))
    with pytest.raises(FaceclsError, match="scarf"):
        draw_face(np.random.default_rng(3), "scarf")


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "demo.zip"
    target.write_bytes(b"previous")

    def broken(photo):
        raise OSError("disk full")

    monkeypatch.setattr(demo_archive, "jpeg_bytes", broken)
    with pytest.raises(OSError, match="disk full"):
        write_demo_archive(target, n_train=2, n_val=1)
    assert target.read_bytes() == b"previous"
    assert [path.name for path in tmp_path.iterdir()] == ["demo.zip"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"n_train": 0}, "n_train"), ({"n_val": -1}, "n_val"), ({"seed": -5}, "seed")],
)
def test_bad_arguments_are_one_line_errors(tmp_path, arguments, message):
    with pytest.raises(FaceclsError, match=message):
        write_demo_archive(tmp_path / "demo.zip", **arguments)
    assert not (tmp_path / "demo.zip").exists()


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(FaceclsError, match="does not exist"):
        write_demo_archive(tmp_path / "absent" / "demo.zip", n_train=1, n_val=1)


def test_command_line_writes_both_files_and_summarises(tmp_path, capsys):
    archive, truth = tmp_path / "demo.zip", tmp_path / "truth.txt"
    main(["--out", str(archive), "--truth", str(truth), "--n-train", "6", "--n-val", "4", "--seed", "11"])
    summary = capsys.readouterr().out
    assert summary.count("\n") == 1 and "MB" in summary and "train" in summary and "val" in summary
    assert len(labels_in(truth.read_text())) == 4
    with zipfile.ZipFile(archive) as zipped:
        assert len([name for name in zipped.namelist() if name.endswith(".jpg")]) == 10
