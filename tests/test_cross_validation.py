"""Training over the folds: each fold model trains without its own fold and the test part, scores its
fold, the variant's file holds their mean; a killed run keeps the fold models it finished."""

import numpy as np
import pytest
import torch

from facecls.data.folds import NO_FOLD, assign_folds
from facecls.data.split import TEST, TRAIN
from facecls.models.files import load_model
from facecls.models.inference import predict_scores
from facecls.models.precision import resolve_precision
from facecls.training import cross_validation
from facecls.training.cross_validation import train_cross_validated, train_folds, work_dir
from tests.toy_faces import toy_config, toy_set

DATA = toy_set(n=120, tune=False)
FOLD = assign_folds(DATA.labels, DATA.part, 3, seed=0)


@pytest.fixture
def seen_by_training(monkeypatch):
    """The train rows each fold model was given, by fold."""
    seen, real = {}, cross_validation.train_variant

    def spy(config, data, *args, **kwargs):
        seen[config["fold"]] = set(data.train_rows.tolist())
        return real(config, data, *args, **kwargs)

    monkeypatch.setattr(cross_validation, "train_variant", spy)
    return seen


def test_each_fold_model_trains_on_the_other_folds_and_scores_its_own(tmp_path, seen_by_training):
    trained = train_folds(toy_config(epochs=1), DATA, FOLD, tmp_path / "work", None)
    assert sorted(seen_by_training) == [0, 1, 2]
    for k, rows in seen_by_training.items():
        assert rows == set(np.flatnonzero((FOLD != k) & (FOLD != NO_FOLD)).tolist())
        assert not rows & set(np.flatnonzero(DATA.part == TEST).tolist())
    assert trained.oof.rows.tolist() == np.flatnonzero(DATA.part == TRAIN).tolist()
    assert np.array_equal(trained.oof.fold, FOLD[trained.oof.rows])
    cpu = torch.device("cpu")
    precision = resolve_precision("auto", ["simplecnn"], "score", cpu)  # as the fold models were scored
    for k, model in enumerate(trained.models):
        mine = trained.oof.fold == k
        own = predict_scores(model, DATA.images[trained.oof.rows[mine]], cpu, tta=True, precision=precision)
        assert trained.oof.scores[mine] == pytest.approx(own)


def test_fold_models_n_trains_the_first_n_folds_only(tmp_path, seen_by_training):
    trained = train_folds(toy_config(epochs=1, fold_models=1), DATA, FOLD, tmp_path / "work", None)
    assert list(seen_by_training) == [0] and len(trained.models) == 1
    assert set(trained.oof.fold) == {0} and trained.oof.rows.tolist() == np.flatnonzero(FOLD == 0).tolist()


def test_the_variant_file_is_the_mean_of_its_fold_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    summary = train_cross_validated(toy_config(epochs=1), DATA, 3, 0, tmp_path / "toy.pt", tmp_path / "log")
    model, info = load_model(tmp_path / "toy.pt", expect_variant="toy")
    assert [m["fold"] for m in info["config"]["members"]] == [0, 1, 2] and len(info["history"]) == 3
    assert summary["fold_models"] == 3 and summary["train_seconds"] > 0 and len(summary["epochs_run"]) == 3
    x = DATA.images[:5]
    cpu = torch.device("cpu")
    singles = np.mean([predict_scores(m, x, cpu) for m in model.members], axis=0)
    assert predict_scores(model, x, cpu) == pytest.approx(singles, abs=1e-5)
    assert sorted(p.name for p in (tmp_path / "log").iterdir()) == ["fold_0", "fold_1", "fold_2"]
    assert not list(work_dir("toy").glob("*.pt")), "the finished fold models are cleared once the file holds them"


def test_a_killed_run_keeps_the_fold_models_it_finished(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    real, calls = cross_validation.train_variant, []

    def killed_in_fold_2(config, data, *args, **kwargs):
        calls.append(config["fold"])
        if config["fold"] == 2 and calls.count(2) == 1:
            raise KeyboardInterrupt
        return real(config, data, *args, **kwargs)

    monkeypatch.setattr(cross_validation, "train_variant", killed_in_fold_2)
    with pytest.raises(KeyboardInterrupt):
        train_cross_validated(toy_config(epochs=1), DATA, 3, 0, tmp_path / "toy.pt", tmp_path / "log")
    train_cross_validated(toy_config(epochs=1), DATA, 3, 0, tmp_path / "toy.pt", tmp_path / "log")
    assert calls == [0, 1, 2, 2], "folds 0 and 1 were kept, fold 2 trained again"
    resumed = torch.load(tmp_path / "toy.pt", weights_only=True)

    monkeypatch.setattr(cross_validation, "train_variant", real)
    train_cross_validated(toy_config(epochs=1), DATA, 3, 0, tmp_path / "again.pt", None)
    undisturbed = torch.load(tmp_path / "again.pt", weights_only=True)
    assert all(torch.equal(resumed["state_dict"][k], undisturbed["state_dict"][k]) for k in undisturbed["state_dict"])
    assert torch.equal(resumed["out_of_fold"]["scores"], undisturbed["out_of_fold"]["scores"])
    assert (tmp_path / "log" / "fold_0" / "metrics.json").exists(), "a kept fold's curves are written again"


def test_a_fold_model_of_another_run_is_not_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_cross_validated(toy_config(epochs=1), DATA, 3, 0, tmp_path / "toy.pt", None)
    first = torch.load(tmp_path / "toy.pt", weights_only=True)
    (work_dir("toy") / "fold0.pt").parent.mkdir(parents=True, exist_ok=True)
    torch.save(first, work_dir("toy") / "fold0.pt")  # not a fold model of the next run: another fingerprint
    train_cross_validated(toy_config(epochs=1, lr=0.01), DATA, 3, 0, tmp_path / "other.pt", None)
    other = torch.load(tmp_path / "other.pt", weights_only=True)
    assert other["summary"]["fold_models"] == 3
    head = "members.0.head.4.weight"
    assert not torch.equal(first["state_dict"][head], other["state_dict"][head])
