"""End to end: `dvc repro` of the real dvc.yaml on tiny configurations in temporary copies."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml

from facecls.data.split import PARTS
from facecls.evaluation.rates import hter
from tests.repo_copy import TWO_VARIANTS, dvc, dvc_env, make_tiny_repo

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
STAGES_AFTER_INDEX = [("audit",), ("train", "simplecnn"), ("train", "simplecnn_weighted"), ("evaluate", "simplecnn"),
                      ("evaluate", "simplecnn_weighted"), ("ensemble", "ensemble", "simplecnn", "simplecnn_weighted"),
                      ("compare",), ("predict",)]


def declared_outputs(repo: Path) -> list[Path]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return [repo / out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]


def set_params(repo: Path, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def weights_of(repo: Path, name: str) -> dict:
    return torch.load(repo / "models" / f"{name}.pt", weights_only=True)["state_dict"]


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_repro_writes_every_declared_output_and_a_second_repro_does_nothing(tmp_path):
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=1, n_train=96, n_val=21)
    dvc(repo, "repro")
    missing = [str(p.relative_to(repo)) for p in declared_outputs(repo) if not p.exists()]
    assert not missing

    labels = (repo / "results" / "label_val.txt").read_text().splitlines()
    assert len(labels) == 21 and set(labels) <= {"0", "1"}
    summary = (repo / "results" / "summary.md").read_text()
    assert "simplecnn_weighted" in summary and "Chosen: **" in summary and "95 % bootstrap" in summary

    # DVC compares a few figures per variant, the chosen one and its HTER, and the audit's counts;
    # diagnostics are not metrics.
    shown = json.loads(dvc(repo, "metrics", "show", "--json"))
    files = next(iter(shown.values()))["data"]
    assert sorted(files) == ["results/audit/summary.json", "results/summary.json"]
    assert files["results/audit/summary.json"]["data"]["faces"] == 96
    figures = files["results/summary.json"]["data"]
    assert figures["chosen"] in [*TWO_VARIANTS, "ensemble"]
    for name in [*TWO_VARIANTS, "ensemble"]:
        assert set(figures[name]) == {"hter", "hter_ci95", "oof_hter", "oof_hter_ci95"}
    metrics = json.loads((repo / "results" / "metrics" / "simplecnn.json").read_text())
    assert {"hter", "hter_ci95", "recall_0", "recall_1", "auc", "threshold", "hter_at_0_5", "weights", "oof_hter",
            "oof_hter_ci95", "n_oof", "n_train", "n_test", "n_test_class_0", "torch", "threads",
            "device"} <= set(metrics)
    assert metrics["n_oof"] == metrics["n_train"], "every train face is scored out of fold"
    assert len(metrics["fold_model_test_hter"]) == 2, "one test figure per fold model beside the mean's"
    # The precisions train.precision (auto) resolved to on this machine, and the knob for `facecls label`.
    assert {metrics["train_precision"], metrics["score_precision"]} <= {"fp32", "bf16"}
    exported = torch.load(repo / "results" / "model.pt", weights_only=True)
    assert exported["config"]["precision"] == "auto" and exported["score_precision"] in ("fp32", "bf16")

    assert "Data and pipelines are up to date" in dvc(repo, "repro")
    assert "changed" not in dvc(repo, "status")
    plots = json.loads(dvc(repo, "plots", "show", "--json"))["data"]
    roc = plots["ROC on the test part, every variant"][0]["content"]["data"]["values"]
    assert {row["filename"].split("/")[0] for row in roc} == {*TWO_VARIANTS}, "one panel, every variant"
    assert any(name.endswith("summary.png") for name in plots)

    set_params(repo, lambda p: p["variants"]["simplecnn"].update(lr=0.0005))
    status = dvc(repo, "status")
    assert "train@simplecnn:" in status and "train@simplecnn_weighted" not in status
    assert "ensemble@ensemble:" not in status and "compare:" not in status


def test_two_forced_runs_on_one_machine_give_the_same_weights_and_numbers(tmp_path):
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=2, n_train=64, n_val=8)
    set_params(repo, lambda p: p["train"].update(threads=0))  # the default: every core
    dvc(repo, "repro")
    first = {name: weights_of(repo, name) for name in TWO_VARIANTS}
    first_metrics = {p.name: json.loads(p.read_text()) for p in (repo / "results" / "metrics").iterdir()}
    dvc(repo, "repro", "--force")
    for name in TWO_VARIANTS:
        assert same_tensors(weights_of(repo, name), first[name]), name
    for path in (repo / "results" / "metrics").iterdir():
        again, before = json.loads(path.read_text()), first_metrics[path.name]
        timings = ("train_seconds", "train_cpu_seconds")
        assert {k: v for k, v in again.items() if k not in timings} == \
               {k: v for k, v in before.items() if k not in timings}, path.name


def test_no_test_label_reaches_training_early_stopping_threshold_or_choice(tmp_path, run_stage):
    """Flip every label of the test part after the split: the models, thresholds, out-of-fold figures,
    the chosen variant and label_val.txt stay as they were; only the reported test figures move.
    Training drops the faces the label audit flags, so the audit's flags reach training: the test
    labels must not reach them."""
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=2, n_train=96, n_val=16)
    set_params(repo, lambda p: p["train"].update(label_issues="drop"))
    dvc(repo, "repro")
    before = {"models": {n: weights_of(repo, n) for n in TWO_VARIANTS},
              "metrics": {n: json.loads((repo / "results" / "metrics" / f"{n}.json").read_text())
                          for n in [*TWO_VARIANTS, "ensemble"]},
              "chosen": json.loads((repo / "results" / "summary.json").read_text())["chosen"],
              "labels": (repo / "results" / "label_val.txt").read_text()}

    index = repo / "data" / "prepared" / "train_img.csv"
    rows = list(csv.DictReader(index.open(newline="")))
    for row in rows:
        if row["part"] == PARTS[2]:
            row["label"] = str(1 - int(row["label"]))
    with index.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    shutil.rmtree(repo / ".cache", ignore_errors=True)  # no resume checkpoint to lean on
    for stage, *args in STAGES_AFTER_INDEX:
        done = run_stage(stage, repo, *args)
        assert done.returncode == 0, done.stderr

    for name in TWO_VARIANTS:
        assert same_tensors(weights_of(repo, name), before["models"][name]), name
    for name, old in before["metrics"].items():
        new = json.loads((repo / "results" / "metrics" / f"{name}.json").read_text())
        assert (new["threshold"], new["oof_hter"], new["epochs_run"]) == (old["threshold"], old["oof_hter"],
                                                                          old["epochs_run"]), name
        assert new["hter"] != old["hter"], f"{name}: the poisoned test labels must show in the test figures"
    assert json.loads((repo / "results" / "summary.json").read_text())["chosen"] == before["chosen"]
    assert (repo / "results" / "label_val.txt").read_text() == before["labels"]


def fake_imagenet_file(repo: Path) -> dict:
    state = torchvision.models.mobilenet_v2(weights=None).state_dict()
    torch.save(state, repo / "data" / "weights" / "mobilenet_v2-b0353104.pth")
    return state


def test_starting_weights_are_a_tracked_input_in_both_directions(tmp_path):
    variants = {"simplecnn": {"arch": "simplecnn"},
                "mobilenet": {"arch": "mobilenetv2", "mode": "head", "weights": "imagenet",
                              "weights_fallback": "random"}}
    repo = make_tiny_repo(tmp_path, variants=variants, epochs=1, n_train=48, n_val=8)
    targets = ["train@simplecnn", "train@mobilenet"]
    record = repo / "models" / "pretrained" / "mobilenet.json"

    dvc(repo, "repro", *targets)  # offline, no file: a loud fallback to random initialisation
    assert json.loads(record.read_text())["weights"] == "random (imagenet unavailable)"
    fallen_back = weights_of(repo, "mobilenet")

    imagenet = fake_imagenet_file(repo)
    assert "changed deps" in dvc(repo, "status", "weights")
    rerun = dvc(repo, "repro", *targets)
    assert "Running stage 'train@mobilenet'" in rerun and "Running stage 'train@simplecnn'" not in rerun
    assert json.loads(record.read_text())["weights"] == "imagenet"
    started_from = weights_of(repo, "mobilenet")
    frozen = "members.0.backbone.features.0.0.weight"  # head mode: each fold model's backbone keeps the file's
    assert torch.equal(started_from[frozen], imagenet["features.0.0.weight"])
    assert torch.equal(started_from[frozen.replace("members.0", "members.1")], imagenet["features.0.0.weight"])

    (repo / "data" / "weights" / "mobilenet_v2-b0353104.pth").unlink()
    rerun = dvc(repo, "repro", *targets)
    assert "train@mobilenet" in rerun and "Running stage 'train@simplecnn'" not in rerun
    assert json.loads(record.read_text())["weights"] == "random (imagenet unavailable)"
    assert same_tensors(weights_of(repo, "mobilenet"), fallen_back), "the same inputs give the same model"
    assert not torch.equal(weights_of(repo, "mobilenet")[frozen], started_from[frozen])


@pytest.mark.skipif(not (SHARED / "faces-sample.zip").exists(), reason="../shared/data/faces-sample.zip is absent")
def test_faces_sample_label_file_scores_well_against_the_truth(tmp_path):
    weighted = TWO_VARIANTS["simplecnn_weighted"]
    repo = make_tiny_repo(tmp_path, variants={"simplecnn_weighted": weighted,
                                              "simplecnn_weighted_seed1": {**weighted, "seed": 1}}, epochs=2)

    def on_faces_sample(params):
        params["data"]["archive"] = str(SHARED / "faces-sample.zip")
        params["train"]["batch_size"] = 64

    set_params(repo, on_faces_sample)
    dvc(repo, "repro", timeout=900)
    predicted = np.array([int(v) for v in (repo / "results" / "label_val.txt").read_text().split()])
    truth = np.array([int(v) for v in (SHARED / "faces-sample-val-truth.txt").read_text().split()])
    assert len(predicted) == len(truth) == 500
    assert hter(truth, predicted) < 0.35  # chance is 0.5; two CPU epochs of SimpleCNN reach about 0.2-0.25

    # `facecls score --variants`: the same HTER for the label file, and a row per scored variant.
    scored = subprocess.run([sys.executable, "-m", "facecls.cli", "score", str(SHARED / "faces-sample-val-truth.txt"),
                             "--variants"], cwd=repo, env=dvc_env(repo), capture_output=True, text=True, check=True)
    lines = scored.stdout.splitlines()
    assert f"HTER {hter(truth, predicted):.4f}" in lines[0]
    rows = [line for line in lines if line.startswith("| simplecnn_weighted") or line.startswith("| ensemble")]
    assert len(rows) == 3 and sum("(chosen)" in line for line in rows) == 1
    assert lines[-1].startswith("The truth HTER falls inside the test interval for ")


def test_every_train_face_is_scored_once_out_of_fold_and_the_folds_rerun_training_only(tmp_path):
    """cv.folds models per variant, each scoring the fold it never trained on: every train face
    exactly once, no test face. A change of cv.folds retrains; it never decodes the archive again."""
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=1, n_train=96, n_val=8)
    set_params(repo, lambda p: p["variants"]["simplecnn"].update(fold_models=1))
    dvc(repo, "repro")
    parts = [row["part"] for row in csv.DictReader((repo / "data" / "prepared" / "train_img.csv").open(newline=""))]
    train_rows = {i for i, part in enumerate(parts) if part == "train"}
    # The ensemble of both averages them on the faces both scored out of fold: simplecnn's one fold.
    for name, models in (("simplecnn_weighted", 2), ("simplecnn", 1), ("ensemble", 1)):
        scored = list(csv.DictReader((repo / "results" / "eval" / name / "oof_scores.csv").open(newline="")))
        rows = [int(r["row"]) for r in scored]
        assert len(rows) == len(set(rows)) and set(rows) <= train_rows, name
        assert len({r["fold"] for r in scored}) == models, name
        if models == 2:
            assert set(rows) == train_rows, f"{name}: every train face, once"
        saved = torch.load(repo / "models" / f"{name}.pt", weights_only=True)
        leaves = saved["config"]["members"] if name != "ensemble" else saved["config"]["members"][0]["members"]
        assert len(leaves) == models and [m["fold"] for m in leaves] == list(range(models)), name
    assert (repo / "results" / "train" / "simplecnn_weighted" / "fold_1" / "metrics.json").exists()

    set_params(repo, lambda p: p["cv"].update(folds=3))
    status = dvc(repo, "status")
    assert "train@simplecnn:" in status and "train@simplecnn_weighted:" in status
    assert "index:" not in status and "check:" not in status and "audit:" not in status
