"""Write files and folders so that a failure part-way leaves nothing half-written.

Everything is built beside its destination under a temporary name and moved
into place with one rename, which the OS makes atomic on the same file system.
A previous output therefore stays intact until the new one is complete.

A process killed outright (SIGKILL, the OOM killer, a power cut) runs no clean-up,
so its temporary file or folder stays behind. Temporary names carry the writer's
process id, and the next write of the same output removes those whose writer no
longer runs before it begins: nothing piles up, and a writer still at work
elsewhere keeps its file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

# mkstemp/mkdtemp create private files; outputs should get the usual permissions.
_UMASK = os.umask(0)
os.umask(_UMASK)
# What follows ".<output name>." in a temporary name: the writer's pid, mkstemp's random part.
_TEMP_REST = re.compile(r"(?P<pid>[0-9]+)\.[A-Za-z0-9_]+\.tmp")


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(path: str | os.PathLike) -> list[str]:
    """Remove what killed writers of ``path`` left beside it: their temporary files or folders
    (``.<name>.<pid>.<random>.tmp`` of a pid that no longer runs) and the previous folder an
    interrupted ``atomic_dir`` had moved aside (``.<name>.old``). Returns the names removed."""
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    try:
        candidates = [e for e in os.scandir(path.parent) if e.name.startswith(prefix)]
    except FileNotFoundError:
        return removed
    for entry in candidates:
        rest = entry.name[len(prefix):]
        match = _TEMP_REST.fullmatch(rest)
        killed = match is not None and not _running(int(match["pid"]))
        if not (killed or rest == "old"):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed.append(entry.name)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path; on success it replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    tmp.chmod(0o666 & ~_UMASK)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, value) -> None:
    write_text(path, json.dumps(value, indent=2) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces the folder ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        # A folder cannot be renamed over a non-empty one: move the old aside first.
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)  # the previous output stays the output
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
