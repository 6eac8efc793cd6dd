"""Smoke test of the benchmark (python -m facecls.tools.bench): it runs on a tiny size and writes
a well-formed table and JSON. The full-size figures live in BENCHMARKS.md, not in the suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile

import pytest
import torch

from facecls.data.manifest import check_archive, counts
from facecls.models.precision import device_has_bf16
from facecls.tools.bench import REPO
from facecls.tools.bench.__main__ import main, parse_args
from facecls.tools.bench.archive import ROOT, make_archive
from facecls.tools.bench import speed
from facecls.tools.bench.measure import run_measured


def test_generated_archive_has_the_exercise_layout(tmp_path):
    archive = tmp_path / "faces.zip"
    meta = make_archive(archive, 25, 7, workers=1)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        blob = zf.read(f"{ROOT}train_img/000001.jpg")
    assert blob[:2] == b"\xff\xd8"  # JPEG
    assert sum(n.startswith(f"{ROOT}train_img/") and n.endswith(".jpg") for n in names) == 25
    assert sum(n.startswith(f"{ROOT}val_img/") and n.endswith(".jpg") for n in names) == 7
    summary = counts(check_archive(archive))  # the pipeline's own checks accept it
    assert (summary["train_images"], summary["val_images"]) == (25, 7)
    assert summary["class_0"] + summary["class_1"] == 25 == meta["class_0"] + meta["class_1"]


def test_wrap_records_a_command(tmp_path):
    log = tmp_path / "stages.jsonl"
    assert main(["_wrap", str(log), "--", sys.executable, "-c", "pass"]) == 0
    record = json.loads(log.read_text())
    assert record["rc"] == 0 and record["end"] >= record["start"] and record["maxrss_mb"] > 0


def test_wrap_knows_when_its_own_process_began(tmp_path):
    # DVC's own time is counted up to the wrapper's start, not up to the stage command's.
    log = tmp_path / "stages.jsonl"
    launched = time.time()
    subprocess.run([sys.executable, "-m", "facecls.tools.bench", "_wrap", str(log), "--", sys.executable, "-c",
                    "pass"], check=True, cwd=REPO)
    record = json.loads(log.read_text())
    assert launched - 0.05 <= record["wrapper_start"] < record["start"] < launched + 30


def test_dvc_own_cpu_leaves_out_the_stage_it_ran(tmp_path):
    # One stage that burns two seconds of CPU, more than DVC's own share here: `_dvc` counts it with
    # the children, so DVC's own CPU (the whole process tree less the children) leaves it out.
    (tmp_path / "burn.py").write_text("import time\nwhile time.process_time() < 2.0:\n    pass\n")
    (tmp_path / "dvc.yaml").write_text(
        f"stages:\n  burn:\n    cmd: {sys.executable} burn.py && echo done > out.txt\n    outs: [out.txt]\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env, check=True)
    children = tmp_path / "children.json"
    whole = run_measured([sys.executable, "-m", "facecls.tools.bench", "_dvc", str(children), "--", "repro"],
                         cwd=tmp_path, env=env)
    assert whole["rc"] == 0 and (tmp_path / "out.txt").read_text() == "done\n"
    stage_cpu = json.loads(children.read_text())["children_cpu_s"]
    assert 1.95 <= stage_cpu < 3.0
    assert whole["cpu_s"] - stage_cpu >= 0.2  # DVC's start-up and bookkeeping stay DVC's


def test_quick_benchmark_writes_table_and_json(tmp_path, capsys):
    out, js = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    started = time.perf_counter()
    assert main(["--quick", "--families", "simplecnn", "--cache-dir", str(tmp_path / "cache"),
                       "--out", str(out), "--json", str(js)]) == 0
    elapsed = time.perf_counter() - started
    # About 20 s on 2 idle cores; the bound leaves room for a machine shared with other work.
    assert elapsed < 120, f"the smoke run took {elapsed:.0f} s"

    table = out.read_text()
    assert table.startswith("# Benchmarks")
    header = "| measurement | measured | ceiling | ratio (wall) | ratio (CPU) | target | holds | load |"
    assert header in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and line != header]
    assert all(line.count("|") == header.count("|") for line in rows)
    for name in ("check", "index", "peak memory of the data stages", "train simplecnn", "predict simplecnn",
                 "peak memory training"):
        assert any(name in line for line in rows), name
    for phase in ("train", "predict"):  # a row per precision, the target held by the one the pipeline picks
        named = [line for line in rows if line.startswith(f"| {phase} simplecnn ")]
        assert {line.split()[3].rstrip(":") for line in named} == {"fp32", "bf16"}
        assert sum("(auto)" in line and "≥ 0.9" in line for line in named) == 1
    assert re.search(r"torch \d", table) and "usable cores" in table

    results = json.loads(js.read_text())
    assert results["sizes"] == {"train": 300, "val": 60}
    assert results["machine"]["cores"] >= 1
    for r in results["rows"]:
        assert set(r) >= {"name", "measured", "ceiling", "ratio", "cpu_ratio", "target", "holds", "load"}
        assert r["ratio"] is None or r["ratio"] > 0
        assert r["cpu_ratio"] is None or r["cpu_ratio"] > 0
    family = results["families"]["simplecnn"]
    assert family["set_is_memmap"] and family["train"]["rate"] > 0 and family["predict"]["ceiling"] > 0
    assert family["train"]["cpu_ratio"] > 0 and family["peak_rss_mb"] > 0
    for phase in ("train", "predict"):
        f = family[phase]
        assert set(f["precisions"]) == {"fp32", "bf16"} and f["precision"] in f["precisions"]
        fastest = max(f["precisions"].values(), key=lambda v: v["bare_per_cpu_s"])
        assert f["ceiling_per_cpu_s"] == fastest["bare_per_cpu_s"], "the ceiling is the faster precision's bare work"
    assert results["index"]["ceiling_rate"] > 0
    assert "dvc" not in results  # --quick leaves dvc repro out


@pytest.mark.parametrize("argv, expected", [
    (["--quick"], (300, 60, False, 2)),
    ([], (100_000, 20_000, True, None)),
    (["--quick", "--train", "500", "--dvc"], (500, 60, True, 2)),
])
def test_sizes_and_quick_defaults(argv, expected):
    args = parse_args(argv)
    assert (args.train, args.val, args.dvc, args.batches) == expected


def test_the_speed_study_writes_a_row_per_configuration(tmp_path, monkeypatch):
    out = tmp_path / "speed.md"
    monkeypatch.setattr(sys, "argv", ["speed", "--shapes", "simplecnn,vgg64 stem single", "--batches", "8,16",
                                      "--no-compile", "--seconds", "0.2", "--rounds", "1", "--threads", "1",
                                      "--out", str(out)])
    speed.main()
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ") and "img/s" not in line]
    precisions = 2 if device_has_bf16(torch.device("cpu")) else 1
    assert len(rows) == 2 * (2 + 1) * precisions  # two batch sizes of training and one of scoring
    assert rows[0].startswith("| simplecnn | train | 8 | no | fp32 |") and rows[0].endswith("| 1.00 |")
    assert any(line.startswith("| vgg64 stem single | train | 16 |") for line in rows)
    scoring = [line for line in rows if "| score |" in line]
    assert len(scoring) == 2 * precisions and scoring[0].endswith("| 1.00 |")
