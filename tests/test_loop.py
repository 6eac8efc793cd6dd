"""The training loop: it learns, stops early, resumes after a kill, and repeats itself."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from facecls.models import precision
from facecls.models.files import load_model
from facecls.training import loop as training
from facecls.training.loop import class_pos_weight, train_variant
from tests.conftest import REPO
from tests.toy_faces import conv_output_dtypes, toy_config, toy_set


def run(tmp_path, config, data, name="toy"):
    return train_variant(config, data, tmp_path / f"{name}.pt", tmp_path / f"log_{name}",
                         tmp_path / "resume" / f"{name}.pt")


def test_pos_weight_makes_class_0_weigh_as_much_as_class_1():
    labels = np.array([0] * 10 + [1] * 90)
    w = class_pos_weight(labels)
    assert w == pytest.approx(10 / 90)
    assert 10 * 1.0 == pytest.approx(90 * w)  # total weight of each class


def test_short_training_learns_an_easy_task(tmp_path):
    summary = run(tmp_path, toy_config(epochs=4), toy_set())
    model, info = load_model(tmp_path / "toy.pt", expect_variant="toy")
    history = info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert summary["best_tune_hter"] < 0.15
    assert summary["weights_used"] == "random"
    assert info["config"]["weights_used"] == "random"
    metrics = json.loads((tmp_path / "log_toy" / "metrics.json").read_text())
    assert {"train_loss", "tune_loss", "tune_hter", "best_epoch"} <= set(metrics)
    assert metrics["weights_used"] == "random"
    assert (tmp_path / "log_toy" / "plots" / "metrics" / "tune_hter.tsv").exists()
    assert not (tmp_path / "resume" / "toy.pt").exists(), "the resume checkpoint is removed when done"


@pytest.mark.parametrize("setting", ["auto", "bf16"])
def test_same_params_give_the_same_weights_on_cpu(tmp_path, setting):
    data = toy_set(n=48)
    run(tmp_path / "a", toy_config(epochs=1, precision=setting), data)
    run(tmp_path / "b", toy_config(epochs=1, precision=setting), data)
    a = torch.load(tmp_path / "a" / "toy.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "toy.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_weighted_loss_records_its_pos_weight(tmp_path):
    data = toy_set(n=96)
    summary = run(tmp_path, toy_config(epochs=1, weighted=True), data)
    assert summary["pos_weight"] == pytest.approx(class_pos_weight(data.labels[data.train_rows]))
    summary = run(tmp_path, toy_config(epochs=1, weighted=True, pos_weight=2.5), data, name="explicit")
    assert summary["pos_weight"] == pytest.approx(2.5)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path, monkeypatch):
    # Tune HTER never improves after epoch 1: with patience 2, epochs 2-3 run, then it stops.
    fixed = {"tune_loss": 0.5, "tune_hter": 0.2, "tune_hter_at_0_5": 0.2}
    monkeypatch.setattr(training, "tune_metrics", lambda *a, **k: dict(fixed))
    summary = run(tmp_path, toy_config(epochs=10, patience=2), toy_set(n=64))
    assert summary["epochs_run"] == 3 and summary["stopped_early"] and summary["best_epoch"] == 1


@pytest.mark.parametrize("ema", [0, 0.9])  # with averaged weights, the average resumes too
def test_a_killed_run_resumes_from_its_last_epoch(tmp_path, monkeypatch, ema):
    data = toy_set(n=96)
    config = toy_config(epochs=3, ema=ema)
    run(tmp_path / "whole", config, data)

    real_epoch = training.fit_epoch
    calls = {"n": 0}

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed during the third epoch
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "fit_epoch", dying_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", config, data)
    assert (tmp_path / "killed" / "resume" / "toy.pt").exists()
    assert not (tmp_path / "killed" / "toy.pt").exists()

    monkeypatch.setattr(training, "fit_epoch", real_epoch)
    epochs_run = []
    monkeypatch.setattr(training, "fit_epoch",
                        lambda *a, **k: epochs_run.append(k["desc"]) or real_epoch(*a, **k))
    summary = run(tmp_path / "killed", config, data)
    assert epochs_run == ["toy epoch 3"], "only the unfinished epoch runs again"
    assert summary["epochs_run"] == 3
    whole = torch.load(tmp_path / "whole" / "toy.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "toy.pt", weights_only=True)
    assert all(torch.equal(whole["state_dict"][k], resumed["state_dict"][k]) for k in whole["state_dict"])
    assert [r["train_loss"] for r in whole["history"]] == [r["train_loss"] for r in resumed["history"]]


def test_a_resume_checkpoint_of_other_params_is_ignored(tmp_path, monkeypatch):
    data = toy_set(n=64)
    real_epoch = training.fit_epoch
    calls = {"n": 0}

    def dying_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(training, "fit_epoch", dying_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, toy_config(epochs=2), data)
    monkeypatch.setattr(training, "fit_epoch", real_epoch)
    summary = run(tmp_path, toy_config(epochs=2, lr=0.001), data)
    assert summary["epochs_run"] == 2
    _, info = load_model(tmp_path / "toy.pt")
    assert info["config"]["lr"] == 0.001 and len(info["history"]) == 2


def test_without_a_tune_part_it_trains_the_given_epochs_and_keeps_the_last(tmp_path):
    """train.early_stopping 0: the schedule runs to its end and the final weights are saved."""
    data = toy_set(n=64)
    everything = type(data)(data.images, data.labels, np.zeros_like(data.part))
    summary = run(tmp_path, toy_config(epochs=3, patience=1), everything)
    assert summary["epochs_run"] == 3 and summary["best_epoch"] == 3 and summary["best_tune_hter"] is None
    _, info = load_model(tmp_path / "toy.pt")
    assert all("tune_hter" not in row for row in info["history"])


@pytest.mark.parametrize(("setting", "resolved"), [
    ("auto", {"train": "fp32", "score": "bf16"}),  # on a CPU where only scoring measured faster in bf16
    ("bf16", {"train": "bf16", "score": "bf16"}),
    ("fp32", {"train": "fp32", "score": "fp32"}),
])
def test_training_and_tune_scoring_run_in_the_resolved_precision_and_record_it(tmp_path, monkeypatch, setting,
                                                                               resolved):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision, "BF16_FASTER_ON_CPU", frozenset({("simplecnn", "score")}))
    with conv_output_dtypes() as seen:
        summary = run(tmp_path, toy_config(epochs=1, precision=setting), toy_set(n=48))
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    assert seen == {"train": {dtypes[resolved["train"]]}, "eval": {dtypes[resolved["score"]]}}
    assert summary["precision"] == resolved and np.isfinite(summary["best_tune_hter"])
    _, info = load_model(tmp_path / "toy.pt")
    assert info["summary"]["precision"] == resolved and info["config"]["precision"] == setting
    weights = torch.load(tmp_path / "toy.pt", weights_only=True)["state_dict"]
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}, "bf16 computes, fp32 keeps"


def test_lr_factor_slows_only_a_pretrained_backbone(tmp_path):
    """train.lr_factor is for backbones that start from pretrained weights: a variant trained from random
    weights gets lr in every parameter group, whatever the factor says."""
    data = toy_set(n=48)
    scratch = training.build(toy_config(lr_factor=0.1, lr=0.002), data)
    assert {g["name"]: g["base_lr"] for g in scratch.optimizer.param_groups} == {"backbone": 0.002, "head": 0.002}

    state = {k: v.clone() for k, v in scratch.model.state_dict().items()}
    torch.save(state, tmp_path / "mine.pt")
    from facecls.models.pretrained import resolve_start
    start = resolve_start("simplecnn", str(tmp_path / "mine.pt"), "error", weights_dir=tmp_path)
    pretrained = training.build(toy_config(lr_factor=0.1, lr=0.002, start=start), data)
    assert {g["name"]: g["base_lr"] for g in pretrained.optimizer.param_groups} == {
        "backbone": pytest.approx(0.0002), "head": 0.002}


def test_in_a_log_file_each_epoch_is_one_line_without_progress_bar_updates(tmp_path):
    """Output to a file (CI, `dvc repro > log`, a queued experiment): no carriage-return updates."""
    script = ("from pathlib import Path\n"
              "from facecls.training.loop import train_variant\n"
              "from tests.toy_faces import toy_config, toy_set\n"
              "train_variant(toy_config(epochs=2, batch_size=8), toy_set(n=96), Path('m.pt'), None, Path('r.pt'))\n")
    with open(tmp_path / "log.txt", "w") as log:
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    text = (tmp_path / "log.txt").read_text()
    assert done.returncode == 0, text
    assert "\r" not in text and "batch/s" not in text
    assert [line.split(":")[0] for line in text.splitlines()] == ["toy epoch 1/2", "toy epoch 2/2"]


def test_half_resolution_epochs_train_on_32x32_faces_first(tmp_path, monkeypatch):
    seen = []
    model_forward = training.FaceModel.forward

    def record(self, images):
        if self.training:
            seen.append(tuple(images.shape[2:]))
        return model_forward(self, images)

    monkeypatch.setattr(training.FaceModel, "forward", record)
    data = toy_set(n=48, tune=False)
    run(tmp_path, toy_config(arch="vgg64", epochs=3, half_res_epochs=2, batch_size=16), data)
    per_epoch = len(seen) // 3
    assert set(seen[:2 * per_epoch]) == {(32, 32)} and set(seen[2 * per_epoch:]) == {(64, 64)}
