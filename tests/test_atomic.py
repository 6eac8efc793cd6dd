"""Atomic writes: a failure part-way leaves the previous output whole and no temporary file."""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys

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


def dead_pid() -> int:
    """The pid of a process that has ended."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


def test_what_killed_writers_left_is_removed_by_the_next_write_and_nothing_else(tmp_path):
    out = tmp_path / "prepared"
    killed = dead_pid()
    left = [f".prepared.{killed}.k1l2e3d4.tmp", ".prepared.old", f".manifest.json.{killed}.abcd_123.tmp"]
    kept = [f".prepared.{os.getpid()}.still_on.tmp",  # a writer that still runs
            f".prepared.{killed}.tmp", ".prepared.notes", "prepared.old", f".other.{killed}.k1l2e3d4.tmp"]
    (tmp_path / left[0]).mkdir()
    (tmp_path / left[0] / "train_img.npy").write_bytes(b"half")
    for name in left[1:] + kept:
        (tmp_path / name).write_text("x")
    with atomic_dir(out) as tmp:
        (tmp / "summary.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["prepared", left[2], *kept])
    write_text(tmp_path / "manifest.json", "{}")
    assert left[2] not in {p.name for p in tmp_path.iterdir()}


def test_temporary_names_carry_the_writer_pid(tmp_path):
    with atomic_path(tmp_path / "manifest.json") as tmp:
        assert tmp.name.startswith(f".manifest.json.{os.getpid()}.") and tmp.name.endswith(".tmp")
    with atomic_dir(tmp_path / "prepared") as tmp:
        assert tmp.name.startswith(f".prepared.{os.getpid()}.") and tmp.name.endswith(".tmp")
