"""Data-parallel training: the collectives' bookkeeping in one process, and real
2-process runs of the train stage under torchrun (gloo on CPU)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from facecls.atomic import write_json
from facecls.data.index import build_index
from facecls.data.manifest import check_archive, write_manifest
from facecls.data.prepared import load_labelled
from facecls.errors import FaceclsError
from facecls.evaluation.thresholds import hter_optimal_threshold
from facecls.models.files import load_model
from facecls.models.pretrained import RANDOM_START
from facecls.training import distributed
from facecls.training.config import variant_config
from facecls.training.distributed import (
    SINGLE,
    World,
    errors_to_launcher,
    gather_shards,
    local_batch_size,
)
from facecls.training.cross_validation import train_cross_validated
from facecls.training.loop import steps_per_epoch
from tests.repo_copy import REPO, tiny_params, write_tiny_archive

TORCHRUN_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", distributed.RANK_ERRORS_ENV)


def test_shards_are_strided_disjoint_and_cover_every_row():
    rows = np.arange(11) * 3
    shares = [World(rank, 3).shard(rows) for rank in range(3)]
    assert sorted(np.concatenate(shares).tolist()) == rows.tolist()
    assert shares[1].tolist() == rows[1::3].tolist()
    assert SINGLE.shard(rows) is rows


def test_one_process_gathers_nothing():
    share = np.array([0.5, -1.0], dtype=np.float32)
    assert gather_shards(share, 2, SINGLE, torch.device("cpu")) is share


@pytest.mark.parametrize("n_rows", [1, 15, 16, 100, 1000])
def test_step_count_does_not_depend_on_the_process_count(n_rows):
    # batch_size is the batch of one optimizer step over all processes.
    assert steps_per_epoch(n_rows, 16, 2) == steps_per_epoch(n_rows, 16, 1)
    assert local_batch_size(16, 2) == 8


def test_a_batch_too_small_to_share_is_refused():
    with pytest.raises(FaceclsError, match="train.batch_size: 3 is too small for 2 processes"):
        local_batch_size(3, 2)


def test_threads_are_shared_between_processes():
    assert distributed.threads_per_process(8, 2) == 4
    assert distributed.threads_per_process(1, 4) == 1


def test_the_first_reported_error_is_the_one_told(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv(distributed.RANK_ERRORS_ENV, str(tmp_path))
    with pytest.raises(SystemExit) as exit_info, errors_to_launcher():
        raise FaceclsError("data/prepared/train_img.csv: not found")
    assert exit_info.value.code == 1
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit), errors_to_launcher():
        raise RuntimeError("Connection closed by peer\nsecond line")  # the consequence, later
    assert capsys.readouterr().err == "", "a process started by the launcher prints no error itself"
    assert distributed._first_report(tmp_path) == ("data/prepared/train_img.csv: not found", "")
    later = sorted(tmp_path.glob("*.txt"))[1].read_text()
    assert later.startswith("training process 0: RuntimeError: Connection closed by peer\nTraceback")


def test_a_process_killed_without_a_word_is_still_named():
    from torch.distributed.elastic.multiprocessing.errors import (
        ChildFailedError,
        ProcessFailure,
    )

    killed = ProcessFailure(local_rank=1, pid=4321, exitcode=-9, error_file="<N/A>")
    message = distributed._unreported_failure(ChildFailedError("train.py", {1: killed}), 2)
    assert message == "training process 1 of 2 ended with SIGKILL and no error message"


def test_outside_the_launcher_errors_pass_through(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(FaceclsError), errors_to_launcher():
        raise FaceclsError("left to fail_cleanly")


def run_python(args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    env["PYTHONPATH"] = str(REPO)  # this checkout's facecls, whatever is installed
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_failing_process_is_told_once_while_its_peer_waits(tmp_path):
    # Process 1 fails; process 0 waits for it in a collective that never completes.
    script = tmp_path / "fail_on_rank_1.py"
    script.write_text(
        "import torch.distributed as dist\n"
        "from facecls.training.distributed import errors_to_launcher, joined\n"
        "from facecls.errors import FaceclsError\n"
        "with errors_to_launcher(), joined('cpu') as (world, device):\n"
        "    if world.rank == 1:\n"
        "        raise FaceclsError('params.yaml: only process 1 objects')\n"
        "    dist.barrier()\n")
    launcher = ("from facecls.training.distributed import launch\n"
                "from facecls.errors import fail_cleanly\n"
                f"fail_cleanly(lambda: launch(2, {str(script)!r}, [], threads=1))()\n")
    done = run_python(["-c", launcher], cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert error_lines(done.stderr) == ["error: params.yaml: only process 1 objects"], done.stderr
    assert done.stderr.rstrip().splitlines()[-1] == "error: params.yaml: only process 1 objects"
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """data/prepared/ of a tiny learnable archive, made once for this module's runs."""
    root = tmp_path_factory.mktemp("prepared")
    write_tiny_archive(root / "tiny.zip", n_train=160, n_val=8)
    write_manifest(root / "manifest.json", check_archive(root / "tiny.zip"))
    build_index(root / "manifest.json", root / "data" / "prepared", 0.1, 42, workers=1)
    return root / "data" / "prepared"


def stage_workdir(tmp_path: Path, prepared: Path, nproc: int, epochs: int = 2) -> tuple[Path, dict]:
    """A folder the train stage can run in: params.yaml, data/prepared/ and the weights stage's record."""
    work = tmp_path / f"nproc{nproc}"
    shutil.copytree(prepared, work / "data" / "prepared")
    write_json(work / "models" / "pretrained" / "simplecnn.json", RANDOM_START)
    params = tiny_params(epochs=epochs)
    params["train"]["nproc"] = nproc
    (work / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return work, params


def train_stage(work: Path) -> subprocess.CompletedProcess:
    return run_python([str(REPO / "stages" / "train.py"), "simplecnn"], cwd=work)


def outputs(work: Path) -> set[str]:
    return {str(p.relative_to(work)) for p in [*work.glob("models/**/*"), *work.glob("results/**/*")]
            if p.is_file()}


def test_two_processes_resume_after_a_crash_and_write_what_one_process_writes(tmp_path, prepared):
    one, params = stage_workdir(tmp_path, prepared, nproc=1)
    data = load_labelled(one / "data/prepared")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(one)
        train_cross_validated({**variant_config(params, "simplecnn"), "start": RANDOM_START}, data, 2, 0,
                              one / "models/simplecnn.pt", one / "results/train/simplecnn")
    two, _ = stage_workdir(tmp_path, prepared, nproc=2)
    blocked = two / ".cache/folds/simplecnn/fold1.pt"
    blocked.mkdir(parents=True)  # process 0 cannot write the second fold model there

    crashed = train_stage(two)

    assert crashed.returncode == 1
    last_line = crashed.stderr.rstrip().splitlines()[-1]
    assert last_line.startswith("error: ") and "fold1.pt" in last_line, crashed.stderr
    assert error_lines(crashed.stderr) == [last_line], "one error line, whichever process failed"
    assert (two / ".cache/resume/simplecnn-fold1.pt").is_file(), "each finished epoch left a checkpoint"
    assert (two / ".cache/folds/simplecnn/fold0.pt").is_file(), "the first fold model was finished"

    blocked.rmdir()
    done = train_stage(two)

    assert done.returncode == 0, done.stderr
    assert "simplecnn fold 1/2: finished before, kept" in done.stderr
    assert "resuming simplecnn fold 2/2 after epoch 2" in done.stderr and "2 processes" in done.stdout
    assert outputs(two) == outputs(one)
    _, info_1 = load_model(one / "models/simplecnn.pt", expect_variant="simplecnn")
    _, info_2 = load_model(two / "models/simplecnn.pt", expect_variant="simplecnn")
    assert info_2["summary"]["processes"] == 2 and info_2["config"]["nproc"] == 2
    for history_1, history_2 in zip(info_1["history"], info_2["history"]):
        assert [row["epoch"] for row in history_2] == [row["epoch"] for row in history_1] == [1, 2]
        assert history_2[0].keys() == history_1[0].keys()
    hters = []
    for info in (info_1, info_2):
        rows, scores = info["out_of_fold"]["rows"].numpy(), info["out_of_fold"]["scores"].numpy()
        assert rows.tolist() == data.train_rows.tolist()
        hters.append(hter_optimal_threshold(data.labels[rows], scores)[1])
    assert max(hters) <= 0.15 and abs(hters[0] - hters[1]) <= 0.1, hters
    metrics_1 = json.loads((one / "results/train/simplecnn/fold_1/metrics.json").read_text())
    metrics_2 = json.loads((two / "results/train/simplecnn/fold_1/metrics.json").read_text())
    assert metrics_2.keys() == metrics_1.keys() and metrics_2["step"] == metrics_1["step"]
