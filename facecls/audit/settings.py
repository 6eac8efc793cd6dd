"""The ``audit`` section of params.yaml, checked, and the training config of the audit's models.

The audit's models only need to rank faces by how well their scores agree with their labels, so
they are cheap: a SimpleCNN for a few epochs, in the precision ``train.precision`` picks (bf16
where the CPU trains SimpleCNN faster in it). The rest of their recipe is fixed here, apart from
params.yaml's ``train`` section, so that changing how the variants train does not rerun the
audit.
"""

from __future__ import annotations

from facecls.errors import FaceclsError
from facecls.models.pretrained import RANDOM_START
from facecls.params import check, check_choice, check_known_keys, get, is_int, is_number
from facecls.training.config import variant_config

RANK_BY = ("self_confidence", "normalized_margin")  # cleanlab's rankings of the flagged faces
FILTER_BY = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning")  # and its filters
KEYS = ("enabled", "folds", "arch", "epochs", "batch_size", "lr", "filter_by", "rank_by", "sheet", "seed")
# The audit models' training knobs that params.yaml does not set: the variants' defaults of today,
# frozen here (class-weighted, so that the minority class gets scores worth ranking).
RECIPE = {"half_res_epochs": 0, "lr_factor": 1.0, "optimizer": "adamw", "weight_decay": 0.0005, "schedule": "onecycle",
          "label_smoothing": 0.0, "augment": {"flip": True, "shift": 0.06}, "ema": 0, "early_stopping": 0,
          "label_issues": "keep", "fold_models": "all", "nproc": 1, "weighted": True}
MACHINE = ("device", "precision", "threads")  # taken from train: where and how this machine computes


def audit_settings(params: dict, source: str = "params.yaml") -> dict:
    """The ``audit`` section, checked."""
    audit = get(params, "audit", source)
    check(isinstance(audit, dict), source, "audit", "a mapping", audit)
    check_known_keys(audit, KEYS, source, "audit")
    for key in KEYS:
        get(params, f"audit.{key}", source)
    check(isinstance(audit["enabled"], bool), source, "audit.enabled", "true or false", audit["enabled"])
    for key in ("folds", "epochs", "batch_size", "sheet"):
        check(is_int(audit[key]) and audit[key] >= (2 if key == "folds" else 1), source, f"audit.{key}",
              "an integer >= 2" if key == "folds" else "a positive integer", audit[key])
    check(is_number(audit["lr"]) and audit["lr"] > 0, source, "audit.lr", "a positive number", audit["lr"])
    check_choice(audit["rank_by"], RANK_BY, source, "audit.rank_by")
    check_choice(audit["filter_by"], FILTER_BY, source, "audit.filter_by")
    check(is_int(audit["seed"]), source, "audit.seed", "an integer", audit["seed"])
    return audit


def audit_training_config(params: dict, source: str = "params.yaml") -> dict:
    """The config each fold's model trains with (checked as a variant's is)."""
    audit = audit_settings(params, source)
    train = {**RECIPE, **{k: get(params, f"train.{k}", source) for k in MACHINE},
             "epochs": audit["epochs"], "batch_size": audit["batch_size"], "lr": audit["lr"],
             "patience": audit["epochs"], "seed": audit["seed"]}
    train.pop("weighted")
    config = variant_config({"train": train, "variants": {"audit": {"arch": audit["arch"], "weighted": True}}},
                            "audit", f"{source} (audit)")
    return {**config, "start": RANDOM_START}  # no pretrained weights: the audit must not wait on the weights stage


def check_label_issues(params: dict, mode: str, source: str = "params.yaml") -> None:
    """``drop`` and ``relabel`` act on the audit's flags: refuse them when the audit is off."""
    if mode != "keep" and not audit_settings(params, source)["enabled"]:
        raise FaceclsError(f"{source}: train.label_issues {mode} needs the audit, but audit.enabled is false")
