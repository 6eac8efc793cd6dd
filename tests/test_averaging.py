"""Averaged weights (train.ema): what early stopping reads and the model file holds."""

import pytest
import torch

from facecls.errors import FaceclsError
from facecls.models.files import load_model
from facecls.training.averaging import averaged_copy
from facecls.training.config import variant_config
from facecls.training.loop import build, fit_epoch, keep_best, train_variant, tune_metrics
from tests.repo_copy import tiny_params
from tests.toy_faces import toy_config, toy_set


def test_the_average_warms_up_instead_of_keeping_the_random_start():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    averaged = averaged_copy(model, 0.998)
    averaged.update_parameters(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(20):
        averaged.update_parameters(model)
    # A plain EMA at 0.998 would still be at 1 - 0.998**20 = 0.04; warmed up, it follows the weights.
    assert averaged.module.weight.item() > 0.8
    assert averaged_copy(model, 0) is None


def test_early_stopping_and_the_saved_model_use_the_averaged_weights(tmp_path):
    data = toy_set(n=96)
    run = build({**toy_config(ema=0.9), "variant": "toy"}, data)
    fit_epoch(run, data, "epoch 1")
    raw, averaged = run.model.state_dict(), run.scored.state_dict()
    assert run.scored is run.averaged.module
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw if raw[k].is_floating_point())
    row = {"epoch": 1, "train_loss": 0.0, **tune_metrics(run, data)}
    assert keep_best(run, row)
    assert all(torch.equal(run.best["state"][k], averaged[k]) for k in averaged)

    train_variant(toy_config(ema=0.9, epochs=2, patience=5), data, tmp_path / "toy.pt", None, tmp_path / "r.pt")
    _, info = load_model(tmp_path / "toy.pt")
    assert info["config"]["ema"] == 0.9


@pytest.mark.parametrize("ema", [-0.1, 1.0, "yes"])
def test_an_ema_outside_0_to_1_is_refused(ema):
    params = tiny_params()
    params["train"]["ema"] = ema
    with pytest.raises(FaceclsError, match="train.ema must be a decay in"):
        variant_config(params, "simplecnn")
