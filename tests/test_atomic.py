"""Atomic writes: a failure part-way leaves the previous output whole and no temporary file."""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

from facecls import atomic
from facecls.atomic import atomic_dir, atomic_path, write_text


def disk_full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_write_text_replaces_the_file_with_usual_permissions(tmp_path):
    path = tmp_path / "results" / "label_val.txt"
    write_text(path, "1\n0\n")
    write_text(path, "0\n1\n1\n")
    assert path.read_text() == "0\n1\n1\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["label_val.txt"]
    umask = os.umask(0)
    os.umask(umask)
    # Not mkstemp's private 0600: other users and tools read outputs.
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_write_failing_part_way_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "label_val.txt"
    write_text(path, "previous\n")
    real_write_text = pathlib.Path.write_text

    def fills_the_disk(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise disk_full()

    monkeypatch.setattr(pathlib.Path, "write_text", fills_the_disk)
    with pytest.raises(OSError) as error:
        write_text(path, "0\n1\n" * 1000)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["label_val.txt"]


def test_an_exception_inside_atomic_path_leaves_no_file(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def filled_folder(path: pathlib.Path, marker: str) -> None:
    (path / "train_img").mkdir(parents=True)
    (path / "train_img" / "1.jpg").write_text(marker)
    (path / "label_train.txt").write_text(marker)


def contents(path: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(path)): p.read_text() for p in sorted(path.rglob("*")) if p.is_file()}


def test_atomic_dir_replaces_the_whole_folder(tmp_path):
    target = tmp_path / "raw"
    with atomic_dir(target) as tmp:
        filled_folder(tmp, "old")
        (tmp / "only_in_old").write_text("old")
    with atomic_dir(target) as tmp:
        filled_folder(tmp, "new")
    assert contents(target) == {"label_train.txt": "new", "train_img/1.jpg": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


def test_a_folder_write_failing_part_way_keeps_the_previous_folder(tmp_path):
    target = tmp_path / "raw"
    with atomic_dir(target) as tmp:
        filled_folder(tmp, "old")
    with pytest.raises(OSError):
        with atomic_dir(target) as tmp:
            (tmp / "train_img").mkdir()
            (tmp / "train_img" / "1.jpg").write_text("new")
            raise disk_full()
    assert contents(target) == {"label_train.txt": "old", "train_img/1.jpg": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]


def test_a_failing_final_rename_puts_the_previous_folder_back(tmp_path, monkeypatch):
    target = tmp_path / "prepared"
    with atomic_dir(target) as tmp:
        filled_folder(tmp, "old")
    real_replace = os.replace

    def refuse_new_folder(src, dst):
        # Moving the old folder aside works; moving the new one in fails.
        if str(src).endswith(".tmp"):
            raise disk_full()
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", refuse_new_folder)
    with pytest.raises(OSError):
        with atomic_dir(target) as tmp:
            filled_folder(tmp, "new")
    assert contents(target) == {"label_train.txt": "old", "train_img/1.jpg": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]
