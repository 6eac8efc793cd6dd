"""``predict.refit``: after every choice, train the chosen variant again on more of the labelled
faces, for the number of epochs early stopping chose on tune, and label ``val_img`` with it at the
chosen variant's tune threshold. ``true`` trains on every labelled face (nothing is left to test
it on); ``except_test`` on train + tune, so the refit recipe gets test figures of its own, paired
in the grid against the variant it refits (README, *Deciding on accuracy*)."""

from __future__ import annotations

from pathlib import Path

import torch

from facecls.data.label_issues import apply_label_issues
from facecls.data.prepared import LabelledSet
from facecls.data.split import TEST, TRAIN, TUNE
from facecls.models.ensemble import NAME as ENSEMBLE
from facecls.models.ensemble import ensemble_members
from facecls.models.files import load_ensemble, load_model, model_file
from facecls.models.pretrained import start_record
from facecls.params import check, get
from facecls.training.config import variant_config
from facecls.training.resume import resume_path
from facecls.training.self_training import train_recipe

REFIT_DIR = Path("results/refit")  # the refit stage's folder: summary.json, and the model when it refits
# predict.refit: false; true (train + tune + test: every labelled face, and no test figure left);
# except_test (train + tune: the test part stays out, so the refit recipe has a test figure of its own).
REFITS = (False, True, "except_test")


def refit_setting(params: dict, source: str = "params.yaml") -> bool | str:
    refit = get(params, "predict.refit", source)
    check(any(refit is choice or refit == choice and isinstance(choice, str) for choice in REFITS), source,
          "predict.refit", "false, true or except_test", refit)
    return refit


def refit_data(data: LabelledSet, which: bool | str, label_issues: str) -> LabelledSet:
    """What a refit trains on: the labelled faces (the audit's flags applied to the train part, as the
    variant trained) moved into the train part, all of them (``true``) or all but test (``except_test``)."""
    data, _ = apply_label_issues(data, label_issues)
    part = data.part.copy()
    moved = (part == TUNE) | (part == TRAIN) | ((part == TEST) if which is True else False)
    part[moved] = TRAIN
    return LabelledSet(data.images, data.labels, part, data.files)


def refit(params: dict, variant: str, data: LabelledSet, which: bool | str,
          out_dir: Path = REFIT_DIR) -> tuple[torch.nn.Module, dict]:
    """``variant`` (each member, for the ensemble) trained again on ``refit_data``, for the number of
    epochs early stopping chose on tune; its tune threshold is then applied as it is."""
    if variant == ENSEMBLE:
        for member in ensemble_members(params):
            refit(params, member, data, which, out_dir)
        model, info = load_ensemble(ensemble_members(params), models_dir=out_dir)
        for member in ensemble_members(params):
            model_file(member, out_dir).unlink()
        return model, info
    _, trained = load_model(model_file(variant), expect_variant=variant)
    epochs = trained["summary"]["best_epoch"]
    config = {**variant_config(params, variant), "start": start_record(variant), "epochs": epochs}
    train_recipe(config, refit_data(data, which, config["label_issues"]), model_file(variant, out_dir), None,
                 resume_path(f"refit-{variant}"))
    model, info = load_model(model_file(variant, out_dir), expect_variant=variant)
    info["summary"]["refit_of_epochs"] = epochs
    return model, info
