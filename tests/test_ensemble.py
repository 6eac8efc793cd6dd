"""The ensemble variant: averaged probabilities, member checks, its model file, its stage."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from facecls.data.split import PARTS
from facecls.errors import FaceclsError
from facecls.evaluation.evaluate import evaluate_model, evaluate_variant
from facecls.evaluation.out_of_fold import mean_out_of_fold, out_of_fold, read_out_of_fold
from facecls.models.architectures import build_architecture
from facecls.models.ensemble import EnsembleModel, build_ensemble, ensemble_members, ensemble_names, member_spec
from facecls.models.files import load_ensemble, load_model, save_ensemble, save_model
from tests.conftest import REPO
from tests.toy_faces import toy_set

DATA = toy_set(n=80, tune=False)  # the faces the members below were scored on out of fold


class FixedLogits(nn.Module):
    """Returns the given logits whatever the batch (one per image)."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(images)]


def faces(n: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(n))


def test_output_is_the_logit_of_the_mean_probability():
    a, b = [2.0, -1.0, 0.0], [-0.5, 3.0, 0.0]
    out = EnsembleModel([FixedLogits(a), FixedLogits(b)])(faces())
    mean_p = (torch.sigmoid(torch.tensor(a)) + torch.sigmoid(torch.tensor(b))) / 2
    assert torch.allclose(torch.sigmoid(out), mean_p, atol=1e-6)
    assert torch.allclose(out, torch.logit(mean_p), atol=1e-5)


def test_saturated_members_stay_finite():
    out = EnsembleModel([FixedLogits([200.0, 200.0, -200.0]), FixedLogits([-200.0, 150.0, -300.0])])(faces())
    assert torch.isfinite(out).all()
    assert out[0].abs() < 1e-4  # probabilities 1 and 0 average to 0.5
    assert out[1] > 100 and out[2] < -100


def test_one_member_is_that_member():
    member = FixedLogits([1.5, -2.0, 0.25])
    assert torch.allclose(EnsembleModel([member])(faces()), member(faces()), atol=1e-5)


def test_no_members_is_refused():
    with pytest.raises(FaceclsError, match="no members"):
        EnsembleModel([])


def params(members, variants=("a", "b", "c")) -> dict:
    return {"variants": {v: {"arch": "simplecnn"} for v in variants}, "ensembles": {"pair": members}}


def test_members_come_from_params_in_their_order():
    assert ensemble_members(params(["c", "a"]), "pair") == ["c", "a"]
    assert ensemble_names(params(["a"])) == ["pair"] and ensemble_names({"variants": {}}) == []


@pytest.mark.parametrize("given, problem", [
    (params(["a", "x"]), "unknown variant 'x'"),
    (params([]), "must list variant names"),
    (params("a"), "must list variant names"),
    (params(["a", "a"]), "names a variant twice"),
    ({"variants": {"a": {}}}, "ensembles has no 'pair' \\(ensembles: none\\)"),
    ({"variants": {"a": {}}, "ensembles": ["a"]}, "ensembles must map each ensemble's name"),
    (params(["a"], variants=("a", "pair")), "ensembles.pair: the name is taken by a variant"),
])
def test_bad_members_are_refused_with_the_key_named(given, problem):
    with pytest.raises(FaceclsError, match=problem):
        ensemble_members(given, "pair")


def test_members_must_be_those_whose_files_dvc_tracks():
    assert ensemble_members(params(["a", "b"]), "pair", tracked=["a", "b"]) == ["a", "b"]
    with pytest.raises(FaceclsError, match="lists 3 variants but the ensemble stage in dvc.yaml tracks "
                                           "the model files of 2"):
        ensemble_members(params(["a", "b", "c"]), "pair", tracked=["a", "b"])
    with pytest.raises(FaceclsError, match=r"ensembles.pair is \['a', 'c'\] but its stage was given "):
        ensemble_members(params(["a", "c"]), "pair", tracked=["a", "b"])


def saved_member(path, variant: str, seed: int, train_seconds: float = 10.0, data=DATA) -> nn.Module:
    """A member's model file, with out-of-fold scores (made up) for the train part of ``data`` in two folds."""
    torch.manual_seed(seed)
    model = build_architecture("simplecnn")
    rows = data.train_rows
    scores = np.random.default_rng(seed).random(len(rows))
    save_model(path / f"{variant}.pt", model, {"variant": variant, "arch": "simplecnn", "mode": "full",
                                               "weights_used": "random", "lr": 0.002},
               history=[], summary={"train_seconds": train_seconds},
               out_of_fold=out_of_fold(rows, rows % 2, scores).record())
    return model.eval()


@pytest.fixture
def members(tmp_path, monkeypatch):
    """Two members' files in models/ of the working directory, where the ensemble looks for them."""
    monkeypatch.chdir(tmp_path)
    models = tmp_path / "models"
    return models, [saved_member(models, "a", 1, 10.0), saved_member(models, "b", 2, 20.5)]


def test_load_save_and_load_again_round_trip(members, tmp_path):
    models, (a, b) = members
    ensemble, info = load_ensemble("pair", ["a", "b"])
    x = faces(4)
    with torch.no_grad():
        expected = torch.logit((torch.sigmoid(a(x)) + torch.sigmoid(b(x))) / 2)
        assert torch.allclose(ensemble(x), expected, atol=1e-4)
    assert info["config"]["arch"] == "ensemble" and info["config"]["variant"] == "pair"
    assert [m["variant"] for m in info["config"]["members"]] == ["a", "b"]
    assert info["config"]["weights_used"] == "random"
    assert info["summary"]["train_seconds"] == pytest.approx(30.5)  # what the ensemble cost to train

    save_ensemble(tmp_path / "pair.pt", ensemble, info)
    loaded, loaded_info = load_model(tmp_path / "pair.pt", expect_variant="pair")
    with torch.no_grad():
        assert torch.allclose(loaded(x), ensemble(x), atol=1e-6)
    assert loaded_info["config"] == info["config"]


def test_a_member_file_of_another_variant_is_refused(members):
    models, _ = members
    (models / "b.pt").replace(models / "c.pt")
    (models / "a.pt").rename(models / "b.pt")
    with pytest.raises(FaceclsError, match="expected 'b'"):
        load_ensemble("pair", ["b"])


def test_member_spec_keeps_what_rebuilds_the_member():
    spec = member_spec({"variant": "r", "arch": "resnet18", "mode": "head", "stem_stride": 2, "lr": 0.1,
                        "weights_used": "imagenet", "augment": {"flip": True}})
    assert spec == {"variant": "r", "arch": "resnet18", "mode": "head", "stem_stride": 2, "weights_used": "imagenet"}


@pytest.mark.parametrize("specs, problem", [
    ([], "non-empty list"),
    ([{"mode": "full"}], "naming their arch"),
    ([{"arch": "ensemble"}], "lists no members"),
    ([{"arch": "vgg16"}], "arch: 'vgg16' is not one of"),
])
def test_bad_member_configs_in_a_file_are_refused(specs, problem):
    with pytest.raises(FaceclsError, match=problem):
        build_ensemble(specs)


def test_a_member_that_is_a_mean_itself_is_rebuilt_as_one(tmp_path):
    """A variant's file is the mean of its fold models; an ensemble of variants nests those means."""
    folds = [build_architecture("simplecnn") for _ in range(2)]
    config = {"variant": "v", "arch": "simplecnn", "mode": "full", "lr": 0.1,
              "members": [{"variant": "v", "arch": "simplecnn", "mode": "full", "fold": k} for k in range(2)]}
    save_model(tmp_path / "v.pt", EnsembleModel(folds), config)
    single, info = load_model(tmp_path / "v.pt", expect_variant="v")
    spec = member_spec(info["config"])
    assert spec["members"][1] == {"variant": "v", "arch": "simplecnn", "mode": "full", "fold": 1} and "lr" not in spec
    nested = build_ensemble([spec, {"variant": "w", "arch": "vgg64", "mode": "full"}])
    assert isinstance(nested.members[0], EnsembleModel) and len(nested.members[0].members) == 2
    nested.members[0].load_state_dict(single.state_dict())
    x = faces(2)
    with torch.no_grad():
        assert torch.allclose(nested.members[0].eval()(x), single(x))


def test_the_out_of_fold_scores_of_an_ensemble_are_its_members_mean_on_the_faces_both_scored():
    rows = np.array([1, 2, 5, 8])
    a = out_of_fold(rows, np.array([0, 1, 0, 1]), np.array([0.2, 0.4, 0.6, 0.8]))
    b = out_of_fold(np.array([8, 2, 9]), np.array([1, 1, 0]), np.array([0.0, 0.2, 0.5]))
    mean = mean_out_of_fold([a, b], ["a", "b"])
    assert mean.rows.tolist() == [2, 8] and mean.fold.tolist() == [1, 1]
    assert mean.scores == pytest.approx([0.3, 0.4])
    other_folds = out_of_fold(np.array([8, 2]), np.array([0, 1]), np.array([0.0, 0.2]))
    with pytest.raises(FaceclsError, match="a and b were trained over different folds"):
        mean_out_of_fold([a, other_folds], ["a", "b"])
    with pytest.raises(FaceclsError, match="no face scored out of fold by every one"):
        mean_out_of_fold([a, out_of_fold(np.array([3]), np.array([0]), np.array([0.5]))], ["a", "b"])


def test_evaluation_writes_the_keys_of_a_variant_but_no_training_curves(members, tmp_path):
    models, _ = members
    data = DATA
    ensemble, info = load_ensemble("ensemble", ["a", "b"])
    oof = mean_out_of_fold([read_out_of_fold(i, len(data.labels), "x") for i in info["members_info"]], ["a", "b"])
    m = evaluate_model("ensemble", ensemble, info, data, oof, tta=True, threshold_method="robust",
                       metrics_path=tmp_path / "metrics" / "ensemble.json", out_dir=tmp_path / "eval")
    single = evaluate_variant("a", models / "a.pt", data, tta=True, threshold_method="robust",
                              metrics_path=tmp_path / "metrics" / "a.json", out_dir=tmp_path / "eval_a")
    assert json.loads((tmp_path / "metrics" / "ensemble.json").read_text()) == m
    assert m.keys() == single.keys()
    assert m["train_seconds"] == pytest.approx(30.5) and m["epochs_run"] is None
    assert m["hter"] == pytest.approx(((1 - m["recall_0"]) + (1 - m["recall_1"])) / 2)
    assert not (tmp_path / "eval" / "training_curves.png").exists()
    for name in ("roc", "confusion", "confident_errors"):
        assert (tmp_path / "eval" / f"{name}.png").is_file()


def write_workspace(root, members: list[str]) -> None:
    """params.yaml, two member model files and data/prepared/, as the ensemble stage finds them."""
    p = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    p["variants"] = {"a": {"arch": "simplecnn"}, "b": {"arch": "simplecnn"}}
    p["ensembles"] = {"ensemble": members}
    p["train"]["device"] = "cpu"
    (root / "params.yaml").write_text(yaml.safe_dump(p), encoding="utf-8")
    saved_member(root / "models", "a", 1)
    saved_member(root / "models", "b", 2)
    data = DATA
    prepared = root / "data" / "prepared"
    prepared.mkdir(parents=True)
    np.save(prepared / "train_img.npy", data.images)
    with open(prepared / "train_img.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "file", "number", "label", "part"])
        for i, (label, part) in enumerate(zip(data.labels, data.part)):
            writer.writerow([i, f"{i + 1:06d}.jpg", i + 1, int(label), PARTS[part]])


def test_stage_writes_the_model_and_the_metrics(tmp_path, run_stage):
    write_workspace(tmp_path, ["a", "b"])
    done = run_stage("ensemble", tmp_path, "ensemble", "a", "b")
    assert done.returncode == 0, done.stderr
    assert "ensemble of a, b: out-of-fold HTER" in done.stdout
    metrics = json.loads((tmp_path / "results" / "metrics" / "ensemble.json").read_text())
    assert {"hter", "recall_0", "recall_1", "threshold", "auc", "hter_at_0_5", "weights", "oof_hter"} <= metrics.keys()
    saved = torch.load(tmp_path / "models" / "ensemble.pt", weights_only=True)
    assert saved["out_of_fold"]["rows"].tolist() == DATA.train_rows.tolist(), "its members' mean, kept in its file"
    assert (tmp_path / "results" / "eval" / "ensemble" / "threshold.json").is_file()


def test_stage_names_an_unknown_member_and_writes_nothing(tmp_path, run_stage):
    write_workspace(tmp_path, ["a", "z"])
    done = run_stage("ensemble", tmp_path, "ensemble", "a", "z")
    assert done.returncode != 0
    assert "ensembles.ensemble: unknown variant 'z'" in done.stderr
    assert not (tmp_path / "results").exists()
