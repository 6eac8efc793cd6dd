"""Read params.yaml and check every knob before any work starts.

A wrong value should stop the run at once with the key named, not an hour
later inside training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from facecls.errors import FaceclsError, read_input_file, one_line
from facecls.report import scored_names

ARCHS = ("simplecnn", "mobilenetv2", "resnet18")
MODES = ("full", "head")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("onecycle", "cosine", "constant")
THRESHOLD_METHODS = ("robust", "optimal", "0.5")

TRAIN_KEYS = {"epochs", "batch_size", "lr", "lr_factor", "optimizer", "weight_decay", "schedule",
              "label_smoothing", "patience", "augment", "seed", "device", "threads", "nproc"}
# Keys a variant may set besides the global train knobs it overrides.
VARIANT_KEYS = {"arch", "mode", "weights", "weights_fallback", "weighted", "pos_weight", "lr_factor",
                "stem_stride", "members"}


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    raw = read_input_file(path, "params file")
    try:
        params = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FaceclsError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise FaceclsError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(params, dict):
        raise FaceclsError(f"{path}: expected a mapping of sections")
    validate_params(params, source=str(path))
    return params


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML's message spans several lines and starts with the context
    # ("while parsing a block mapping"); the problem and its line say more.
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return one_line(exc)


def _get(params: dict, dotted: str, source: str) -> Any:
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FaceclsError(f"{source}: missing key {dotted}")
        node = node[part]
    return node


def _check(ok: bool, source: str, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise FaceclsError(f"{source}: {key} must be {expected}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # YAML reads .nan and .inf as floats; neither is a usable setting.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def validate_params(params: dict, source: str = "params.yaml") -> None:
    archive = _get(params, "data.archive", source)
    _check(isinstance(archive, str) and archive != "", source, "data.archive", "a path", archive)

    fraction = _get(params, "split.val_fraction", source)
    _check(_is_number(fraction) and 0 < fraction < 1, source, "split.val_fraction",
           "a number in (0, 1)", fraction)
    _check(_is_int(_get(params, "split.seed", source)), source, "split.seed", "an integer",
           params["split"]["seed"])

    train = _get(params, "train", source)
    _check(isinstance(train, dict), source, "train", "a mapping", train)
    # A typo such as `-S train.epoch=30` must not pass silently.
    for k in train:
        if k not in TRAIN_KEYS:
            raise FaceclsError(f"{source}: unknown key train.{k} (known: {', '.join(sorted(TRAIN_KEYS))})")
    variants = _get(params, "variants", source)
    _check(isinstance(variants, dict) and len(variants) > 0, source, "variants",
           "a non-empty mapping of variant names", variants)
    for name in variants:
        variant_config(params, name, source=source)

    method = str(_get(params, "evaluate.threshold", source))
    _check(method in THRESHOLD_METHODS, source, "evaluate.threshold", f"one of {THRESHOLD_METHODS}", method)
    chosen = _get(params, "predict.variant", source)
    scored = scored_names(params)
    _check(isinstance(chosen, str) and (chosen == "best" or chosen in scored), source, "predict.variant",
           f"'best' or one of {', '.join(scored)}", chosen)
    _check(isinstance(_get(params, "predict.tta", source), bool), source, "predict.tta", "true or false",
           params["predict"]["tta"])


def variant_config(params: dict, name: str, source: str = "params.yaml") -> dict[str, Any]:
    """The global train knobs with the variant's own values laid over them."""
    variants = params.get("variants") or {}
    if name not in variants:
        raise FaceclsError(f"{source}: unknown variant {name!r} (variants: {', '.join(variants)})")
    own = variants[name] or {}
    train = dict(params.get("train") or {})
    key = f"variants.{name}"
    _check(isinstance(own, dict), source, key, "a mapping", own)
    for k in own:
        if k not in train and k not in VARIANT_KEYS:
            raise FaceclsError(f"{source}: unknown key {key}.{k}")
    # An empty value inherits: params.yaml can list `lr:` in every variant, so that
    # `dvc exp run -S variants.simplecnn.lr=0.0005` finds the key (DVC refuses new keys).
    own = {k: v for k, v in own.items() if v is not None}
    config = {"variant": name, "mode": "full", "weights": "random", "weights_fallback": "random",
              "weighted": False, "pos_weight": None, "lr_factor": 1.0, "stem_stride": 1,
              **train, **own}
    _check_train_config(config, set(own), source, key)
    return config


def _check_train_config(c: dict, own: set, source: str, key: str) -> None:
    def where(k: str) -> str:
        # Name the key where the user actually set the value.
        return f"{key}.{k}" if k in own else f"train.{k}"

    _check(c.get("arch") in ARCHS, source, f"{key}.arch", f"one of {ARCHS}", c.get("arch"))
    _check(c["mode"] in MODES, source, f"{key}.mode", f"one of {MODES}", c["mode"])
    _check(c["weights_fallback"] in ("random", "error"), source, f"{key}.weights_fallback",
           "'random' or 'error'", c["weights_fallback"])
    _check(isinstance(c["weights"], str) and c["weights"] != "", source, f"{key}.weights",
           "'imagenet', 'random' or a path", c["weights"])
    _check(isinstance(c["weighted"], bool), source, f"{key}.weighted", "true or false", c["weighted"])
    _check(c["pos_weight"] is None or (_is_number(c["pos_weight"]) and c["pos_weight"] > 0), source,
           f"{key}.pos_weight", "empty or a positive number", c["pos_weight"])
    for k in ("epochs", "batch_size", "patience"):
        _check(_is_int(c.get(k)) and c[k] > 0, source, where(k), "a positive integer", c.get(k))
    for k in ("lr", "lr_factor"):
        _check(_is_number(c.get(k)) and c[k] > 0, source, where(k), "a positive number", c.get(k))
    _check(_is_number(c.get("weight_decay")) and c["weight_decay"] >= 0, source, where("weight_decay"),
           "a number >= 0", c.get("weight_decay"))
    _check(_is_number(c.get("label_smoothing")) and 0 <= c["label_smoothing"] < 0.5, source,
           where("label_smoothing"), "a number in [0, 0.5)", c.get("label_smoothing"))
    _check(c.get("optimizer") in OPTIMIZERS, source, where("optimizer"), f"one of {OPTIMIZERS}",
           c.get("optimizer"))
    _check(c.get("schedule") in SCHEDULES, source, where("schedule"), f"one of {SCHEDULES}", c.get("schedule"))
    _check(isinstance(c.get("device"), str), source, where("device"), "auto, cpu, cuda or mps", c.get("device"))
    _check(_is_int(c.get("threads")) and c["threads"] >= 0, source, where("threads"),
           "an integer >= 0 (0: all cores)", c.get("threads"))
    _check(_is_int(c.get("nproc")) and c["nproc"] >= 1, source, where("nproc"), "an integer >= 1",
           c.get("nproc"))
    _check(_is_int(c.get("seed")), source, where("seed"), "an integer", c.get("seed"))
    augment = c.get("augment")
    _check(isinstance(augment, dict), source, where("augment"), "a mapping", augment)
    for k in ("shift", "scale", "color"):
        _check(_is_number(augment.get(k)) and 0 <= augment[k] < 0.5, source, f"{where('augment')}.{k}",
               "a number in [0, 0.5)", augment.get(k))
    _check(isinstance(augment.get("flip"), bool), source, f"{where('augment')}.flip", "true or false",
           augment.get("flip"))
    _check(_is_number(augment.get("rotate", 0)) and 0 <= augment.get("rotate", 0) <= 30, source,
           f"{where('augment')}.rotate", "degrees in [0, 30]", augment.get("rotate"))
    _check(_is_number(augment.get("erase", 0)) and 0 <= augment.get("erase", 0) <= 1, source,
           f"{where('augment')}.erase", "a share in [0, 1]", augment.get("erase"))
    for k in augment:
        if k not in ("flip", "shift", "scale", "color", "rotate", "erase"):
            raise FaceclsError(f"{source}: unknown key {where('augment')}.{k}")
