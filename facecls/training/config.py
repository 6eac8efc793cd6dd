"""A variant's training config: the train knobs of params.yaml with the variant's own laid
over them, each checked against the values the code that uses it accepts."""

from __future__ import annotations

from typing import Any

from facecls.device import DEVICES, is_device_name
from facecls.errors import FaceclsError
from facecls.models.architectures import ARCHITECTURES, MODES, SHAPE_KEYS, checked_shape
from facecls.models.precision import PRECISIONS
from facecls.models.pretrained import WEIGHTS_FALLBACKS
from facecls.params import check, check_choice, check_known_keys, get, is_int, is_number
from facecls.training.augment import KNOBS
from facecls.training.optim import OPTIMIZERS, SCHEDULES

# What training does with the labels the audit stage flags, in the train part only: train on them as
# given, leave those faces out, or flip them (the labels are binary).
LABEL_ISSUES = ("keep", "drop", "relabel")
TRAIN_KEYS = ("epochs", "half_res_epochs", "batch_size", "lr", "lr_factor", "optimizer", "weight_decay",
              "schedule", "label_smoothing", "early_stopping", "patience", "augment", "ema", "label_issues",
              "fold_models", "seed", "device", "precision", "threads", "nproc")
# Keys a variant may set besides the train knobs it overrides, with their defaults; the shape
# options (SHAPE_KEYS) default to the architecture's own.
VARIANT_DEFAULTS = {"mode": "full", "weights": "random", "weights_fallback": "random", "weighted": False,
                    "pos_weight": None, "lr_factor": 1.0, "stem_stride": 1, **{k: None for k in SHAPE_KEYS[1:]}}


def variant_config(params: dict, name: str, source: str = "params.yaml") -> dict[str, Any]:
    """The train knobs with the variant's own values laid over them, checked."""
    variants = get(params, "variants", source)
    check(isinstance(variants, dict) and len(variants) > 0, source, "variants",
          "a non-empty mapping of variant names", variants)
    if name not in variants:
        raise FaceclsError(f"{source}: unknown variant {name!r} (variants: {', '.join(variants)})")
    train = get(params, "train", source)
    check(isinstance(train, dict), source, "train", "a mapping", train)
    check_known_keys(train, TRAIN_KEYS, source, "train")
    key = f"variants.{name}"
    own = variants[name] or {}
    check(isinstance(own, dict), source, key, "a mapping", own)
    check_known_keys(own, {*TRAIN_KEYS, *VARIANT_DEFAULTS, "arch"}, source, key)
    # An empty value inherits: params.yaml can list `lr:` in every variant, so that
    # `dvc exp run -S variants.simplecnn.lr=0.0005` finds the key (DVC refuses new keys).
    own = {k: v for k, v in own.items() if v is not None}
    config = {"variant": name, **VARIANT_DEFAULTS, **train, **own}
    _check_config(config, set(own), source, key)
    return config


def _check_config(c: dict, own: set, source: str, key: str) -> None:
    def where(k: str) -> str:
        # Name the key where the user actually set the value.
        return f"{key}.{k}" if k in own else f"train.{k}"

    for k in TRAIN_KEYS:
        if k not in c:
            raise FaceclsError(f"{source}: missing key train.{k}")
    check_choice(c.get("arch"), tuple(ARCHITECTURES), source, f"{key}.arch")
    check_choice(c["mode"], MODES, source, f"{key}.mode")
    check_choice(c["weights_fallback"], WEIGHTS_FALLBACKS, source, f"{key}.weights_fallback")
    check(isinstance(c["weights"], str) and c["weights"] != "", source, f"{key}.weights",
          "'imagenet', 'random' or a path", c["weights"])
    check(isinstance(c["weighted"], bool), source, f"{key}.weighted", "true or false", c["weighted"])
    check(c["pos_weight"] is None or (is_number(c["pos_weight"]) and c["pos_weight"] > 0), source,
          f"{key}.pos_weight", "empty or a positive number", c["pos_weight"])
    try:
        checked_shape(c["arch"], {k: c[k] for k in SHAPE_KEYS})
    except FaceclsError as exc:
        raise FaceclsError(f"{source}: {key}.{exc}") from None
    for k in ("epochs", "batch_size", "patience"):
        check(is_int(c[k]) and c[k] > 0, source, where(k), "a positive integer", c[k])
    check(is_int(c["half_res_epochs"]) and 0 <= c["half_res_epochs"] <= c["epochs"], source,
          where("half_res_epochs"), f"an integer from 0 to the epochs ({c['epochs']})", c["half_res_epochs"])
    check(c["half_res_epochs"] == 0 or ARCHITECTURES[c["arch"]].any_size, source, where("half_res_epochs"),
          f"0 for {c['arch']}, which takes 64x64 faces only", c["half_res_epochs"])
    for k in ("lr", "lr_factor"):
        check(is_number(c[k]) and c[k] > 0, source, where(k), "a positive number", c[k])
    check(is_number(c["weight_decay"]) and c["weight_decay"] >= 0, source, where("weight_decay"),
          "a number >= 0", c["weight_decay"])
    check(is_number(c["label_smoothing"]) and 0 <= c["label_smoothing"] < 0.5, source,
          where("label_smoothing"), "a number in [0, 0.5)", c["label_smoothing"])
    check(is_number(c["ema"]) and 0 <= c["ema"] < 1, source, where("ema"),
          "a decay in [0, 1) (0: no averaged weights)", c["ema"])
    check(is_number(c["early_stopping"]) and 0 <= c["early_stopping"] < 0.5, source, where("early_stopping"),
          "a share in [0, 0.5) (0: the schedule runs to its end)", c["early_stopping"])
    check(c["fold_models"] == "all" or (is_int(c["fold_models"]) and c["fold_models"] >= 1), source,
          where("fold_models"), "all or a positive integer", c["fold_models"])
    check_choice(c["label_issues"], LABEL_ISSUES, source, where("label_issues"))
    check_choice(c["optimizer"], tuple(OPTIMIZERS), source, where("optimizer"))
    check_choice(c["schedule"], tuple(SCHEDULES), source, where("schedule"))
    check(is_device_name(c["device"]), source, where("device"), f"one of {DEVICES} or cuda:N", c["device"])
    check_choice(c["precision"], PRECISIONS, source, where("precision"))
    check(is_int(c["threads"]) and c["threads"] >= 0, source, where("threads"),
          "an integer >= 0 (0: all cores)", c["threads"])
    check(is_int(c["nproc"]) and c["nproc"] >= 1, source, where("nproc"), "an integer >= 1", c["nproc"])
    check(is_int(c["seed"]), source, where("seed"), "an integer", c["seed"])
    _check_augment(c["augment"], where("augment"), source)


def _check_augment(augment: Any, key: str, source: str) -> None:
    check(isinstance(augment, dict), source, key, "a mapping", augment)
    check_known_keys(augment, KNOBS, source, key)
    check(isinstance(augment.get("flip", False), bool), source, f"{key}.flip", "true or false",
          augment.get("flip"))
    for k in ("shift", "scale", "color"):
        value = augment.get(k, 0)
        check(is_number(value) and 0 <= value < 0.5, source, f"{key}.{k}", "a number in [0, 0.5)", value)
    rotate, erase, translate = augment.get("rotate", 0), augment.get("erase", 0), augment.get("translate", 0)
    check(is_number(rotate) and 0 <= rotate <= 30, source, f"{key}.rotate", "degrees in [0, 30]", rotate)
    check(is_number(erase) and 0 <= erase <= 1, source, f"{key}.erase", "a share in [0, 1]", erase)
    check(is_int(translate) and 0 <= translate <= 16, source, f"{key}.translate", "whole pixels from 0 to 16",
          translate)
