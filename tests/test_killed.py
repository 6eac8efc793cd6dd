"""A data stage killed outright (SIGKILL: no clean-up runs) leaves nothing the next run trips over:
the next run succeeds, removes what the killed one left, and writes what an undisturbed run writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.archives import REPO, exercise_entries, leftovers, write_params, write_zip

# Runs a stage, SIGKILLing itself at its N-th os.replace: its outputs are written but not yet
# in place (N=1), or the previous folder is moved aside and the new one not yet moved in (N=2).
KILLED_AT_RENAME = """
import os, runpy, signal, sys
calls, real_replace = [0], os.replace
def replace(src, dst):
    calls[0] += 1
    if calls[0] == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    real_replace(src, dst)
os.replace = replace
runpy.run_path(sys.argv[2])["main"]()
"""
# Runs a stage whose decoding stops for good after its second chunk, once that chunk is written
# to the array: the test kills it there, workers and all.
PAUSED_MIDWAY = """
import runpy, sys, time
from pathlib import Path
from facecls.data import decode
real_chunk = decode._decode_chunk
def paused(source, items, array_path, start):
    resized = real_chunk(source, items, array_path, start)
    if start:
        Path(sys.argv[1]).touch()
        time.sleep(600)
    return resized
decode._decode_chunk = paused
runpy.run_path(sys.argv[2])["main"]()
"""


def start(workspace: Path, program: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", program, *args], cwd=workspace, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})


def run(workspace: Path, stage: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py")], cwd=workspace, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def outputs(workspace: Path) -> dict[str, bytes]:
    data = workspace / "data"
    return {str(p.relative_to(data)): p.read_bytes() for p in sorted(data.rglob("*")) if p.is_file()}


def workspace_with(tmp_path: Path, n_train: int) -> Path:
    workspace = tmp_path / "work"
    workspace.mkdir(parents=True)
    write_zip(workspace / "faces.zip", exercise_entries([i % 2 for i in range(n_train)], val_numbers=range(1, 6)))
    write_params(workspace, **{"data.archive": "faces.zip"})
    return workspace


def undisturbed(tmp_path: Path, n_train: int) -> dict[str, bytes]:
    reference = workspace_with(tmp_path / "reference", n_train)
    for stage in ("check", "index"):
        assert run(reference, stage).returncode == 0
    return outputs(reference)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie has ended, only its parent has not reaped it


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize(("stage", "at_call", "previous"), [
    ("check", 1, False),  # the manifest written, not yet renamed into place
    ("index", 1, True),   # the arrays written; the previous output about to be moved aside
    ("index", 2, True),   # the previous output moved aside, the new one not yet moved in
])
def test_a_stage_killed_at_its_rename_leaves_nothing_the_next_run_trips_over(tmp_path, stage, at_call, previous):
    workspace = workspace_with(tmp_path, 12)
    if stage == "index" or previous:
        assert run(workspace, "check").returncode == 0
    if previous:
        assert run(workspace, stage).returncode == 0
    killed = start(workspace, KILLED_AT_RENAME, str(at_call), str(REPO / "stages" / f"{stage}.py"))
    assert killed.wait(timeout=300) == -signal.SIGKILL, killed.stderr.read()
    assert leftovers(workspace / "data"), "the kill came before anything was left behind: it tests nothing"

    again = run(workspace, stage)
    assert again.returncode == 0, again.stderr
    assert leftovers(workspace / "data") == []
    if stage == "index":
        assert outputs(workspace) == undisturbed(tmp_path, 12)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers through /proc")
def test_index_killed_while_its_workers_decode_leaves_no_process_and_nothing_to_trip_over(tmp_path):
    n_train = 4200  # above PARALLEL_FROM: decoded by a pool of workers, in chunks of 1024
    workspace = workspace_with(tmp_path, n_train)
    assert run(workspace, "check").returncode == 0
    midway = tmp_path / "midway"
    stage = start(workspace, PAUSED_MIDWAY, str(midway), str(REPO / "stages" / "index.py"))
    deadline = time.monotonic() + 240
    while not midway.exists():
        assert stage.poll() is None, stage.stderr.read()
        assert time.monotonic() < deadline, "decoding never reached its second chunk"
        time.sleep(0.05)
    workers = children(stage.pid)
    [temp] = leftovers(workspace / "data")
    assert (workspace / "data" / temp / "train_img.npy").is_file()

    stage.send_signal(signal.SIGKILL)  # the stage alone, as the OOM killer would: not its process group
    assert stage.wait(timeout=60) == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivors = [pid for pid in workers if alive(pid)]
    for pid in survivors:  # not left sleeping on the machine when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, "a decoding worker outlived the killed stage"

    again = run(workspace, "index")
    assert again.returncode == 0, again.stderr
    assert leftovers(workspace / "data") == []
    assert outputs(workspace) == undisturbed(tmp_path, n_train)
