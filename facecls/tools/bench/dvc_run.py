"""``dvc repro`` timed in a copy of the repository: each stage's command (wrapped by the
``_wrap`` sub-command) and DVC's own time between them."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from facecls.data.prepared import LabelledSet
from facecls.data.split import LEFT_OUT, TRAIN
from facecls.tools.bench import MODULE, REPO
from facecls.tools.bench.measure import Trash, bench_command, run_checked
from facecls.training import loop

NOOP_RUNS = 5  # one start of DVC swings by a few tenths of a second on shared cores: the median of five


def run_fraction(fraction: float, script: str, args: list[str]) -> None:
    """Run the stage script with each epoch cut to a ``fraction`` of the training rows (random
    rows over the whole set); the faces it scores out of fold and everything else stay as they are.
    Only used in the benchmark's copy of the repo (the ``_fraction`` sub-command)."""
    full_epoch = loop.fit_epoch

    def bounded(run: loop.Run, data: LabelledSet, desc: str) -> tuple[float, float]:
        rows = data.train_rows
        keep = np.random.default_rng(0).choice(rows, size=max(1, int(round(len(rows) * fraction))), replace=False)
        part = np.where(data.part == TRAIN, LEFT_OUT, data.part)  # rows left out of this epoch
        part[keep] = TRAIN
        return full_epoch(run, LabelledSet(data.images, data.labels, part), desc)

    loop.fit_epoch = bounded
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def _copy_repo(repo: Path, archive: Path, *, epochs: int, fraction: float, batch_size: int | None, device: str,
               stage_log: Path) -> None:
    """The code, a params.yaml with one variant (one fold model of the cv.folds) and the archive at
    hand, and a dvc.yaml whose stage commands record their timings in ``stage_log``."""
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("facecls", "stages"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    # data/weights/ is the weights stage's dependency: its README is enough for variants that start
    # from random weights (and copies none of the user's weight files).
    for name in (".dvcignore", "data/weights/README.md"):
        if (REPO / name).exists():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["archive"] = str(archive.resolve())
    params["train"]["epochs"] = epochs
    params["train"]["device"] = device
    if batch_size:
        params["train"]["batch_size"] = batch_size
    params["variants"] = {"simplecnn": {"arch": "simplecnn", "fold_models": 1}}
    params["predict"]["variant"] = "best"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc_yaml = (REPO / "dvc.yaml").read_text()
    if fraction < 1:
        dvc_yaml = dvc_yaml.replace("cmd: python stages/train.py",
                                    f"cmd: python -m {MODULE} _fraction {fraction} stages/train.py")
    wrapped, count = re.subn(r"cmd: python ", f"cmd: python -m {MODULE} _wrap {stage_log} -- python ", dvc_yaml)
    if not count:
        raise RuntimeError("dvc.yaml: no `cmd: python ...` stage commands to time")
    (repo / "dvc.yaml").write_text(wrapped)


def _stage_name(cmd: str) -> str:
    """``train@simplecnn`` for ``... stages/train.py simplecnn``."""
    script = re.search(r"stages/(\w+)\.py(?: (\S+))?", cmd)
    if not script:
        return cmd
    return f"{script.group(1)}@{script.group(2)}" if script.group(2) else script.group(1)


def dvc_repro(archive: Path, work: Path, *, epochs: int, fraction: float, batch_size: int | None, device: str,
              log, trash: Trash) -> dict:
    """``dvc repro train@simplecnn`` from nothing in a copy of the repository, then once more (no-op)."""
    repo = work / "dvc-repo"
    trash.put(repo)
    stage_log = work / "dvc-stages.jsonl"
    stage_log.unlink(missing_ok=True)
    _copy_repo(repo, archive, epochs=epochs, fraction=fraction, batch_size=batch_size, device=device,
               stage_log=stage_log)
    # This interpreter's folder first on PATH, as an activated virtual environment has it: `dvc` and
    # the stages' `python` start directly, not through a launcher such as pyenv's shims (a bash
    # script that costs 0.1-0.2 s a start on these cores, and is neither DVC's time nor the stage's).
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1",
           "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    dvc = shutil.which("dvc", path=env["PATH"]) or "dvc"
    init = subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=env, capture_output=True, text=True)
    if init.returncode:
        raise RuntimeError(f"dvc init failed: {init.stderr.strip()}")
    out_log = work / "dvc-repro.log"
    out_log.unlink(missing_ok=True)
    log(f"dvc repro train@simplecnn (check, index, {epochs} epoch(s) of {fraction:.0%} of the rows) ...")
    # Run through `_dvc`, which tells the CPU of the stages (with their wrappers) from DVC's own.
    children = work / "dvc-children.json"
    begin = time.time()
    first = run_checked("dvc repro", bench_command("_dvc", str(children), "--", "repro", "train@simplecnn"), out_log,
                        cwd=repo, env=env)
    finish = time.time()
    dvc_cpu = first["cpu_s"] - json.loads(children.read_text())["children_cpu_s"]
    log(f"dvc repro: {first['wall_s']:.0f} s; again with nothing to do, {NOOP_RUNS} times ...")
    noops = [run_checked("dvc repro (no-op)", [dvc, "repro", "train@simplecnn"], out_log, cwd=repo, env=env)
             for _ in range(NOOP_RUNS)]
    stages = [json.loads(line) for line in stage_log.read_text().splitlines() if line.strip()]
    timeline, previous = [], begin
    for s in stages:
        # From the previous stage's end to this wrapper's own start is DVC's; the wrapper's start
        # (interpreter, imports) up to the stage command is the benchmark's.
        timeline.append({"stage": _stage_name(s["cmd"]), "dvc_before_s": round(s["wrapper_start"] - previous, 2),
                         "wrapper_wall_s": round(s["start"] - s["wrapper_start"], 3), **s})
        previous = s["end"]
    train_metrics = {}
    metrics_file = repo / "results" / "train" / "simplecnn" / "fold_0" / "metrics.json"
    if metrics_file.exists():
        train_metrics = json.loads(metrics_file.read_text())
    walls = sorted(n["wall_s"] for n in noops)
    noop = {"wall_s": walls[len(walls) // 2], "walls": walls, "load": [n["load"] for n in noops], "runs": noops}
    return {"first": first, "noop": noop, "stages": timeline, "dvc_after_s": round(finish - previous, 2),
            "dvc_cpu_s": round(dvc_cpu, 2),
            "dvc_overhead_s": round((finish - begin) - sum(s["wall_s"] + s["wrapper_wall_s"] for s in timeline), 2),
            "wrapper_wall_s": round(sum(s["wrapper_wall_s"] for s in timeline), 2),
            "epochs": epochs, "fraction": fraction, "folds": params_of(repo)["cv"]["folds"],
            "train_metrics": train_metrics, "repo": str(repo)}


def params_of(repo: Path) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())
