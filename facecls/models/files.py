"""Trained-model files: weights plus the config needed to rebuild the model.

Files hold only tensors and plain values, so loading them with
``weights_only=True`` never runs code from the file.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facecls.atomic import atomic_path
from facecls.errors import FaceclsError
from facecls.models.architectures import FaceModel, build_architecture, shape_options
from facecls.models.ensemble import ARCH as ENSEMBLE_ARCH
from facecls.models.ensemble import EnsembleModel, build_ensemble, member_spec

MODEL_FORMAT = "facecls-model-1"
REQUIRED_CONFIG = ("arch", "mode")


def model_file(variant: str, models_dir: str | os.PathLike[str] = "models") -> Path:
    """Where the model file of a scored name (a variant, or the ensemble) lives."""
    return Path(models_dir) / f"{variant}.pt"


def load_torch_file(path: Path) -> Any:
    """``torch.load`` a user-supplied file without ever running code from it."""
    if not path.exists():
        raise FaceclsError(f"{path}: file not found")
    if not path.is_file():
        raise FaceclsError(f"{path}: not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The safe unpickler names the class or function the file asked for.
        if "GLOBAL" in str(exc):
            raise FaceclsError(
                f"{path}: refused: file contains pickled code, not plain weights"
            ) from None
        raise FaceclsError(f"{path}: not a readable torch file ({_reason(exc)})") from None
    except Exception as exc:
        raise FaceclsError(f"{path}: not a readable torch file ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The informative line of a torch.load error (its first is often boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("Unsupported")), None)
    return detail or (f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)



def state_dict_mismatch(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]
) -> str | None:
    """How ``given`` fails to fit ``expected`` (one phrase), or None if it fits."""
    # BatchNorm fills in a missing batch counter itself; it is not a weight.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys such as {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys such as {unexpected[0]}")
    for key, tensor in given.items():
        if key in expected and tensor.shape != expected[key].shape:
            problems.append(
                f"{key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}"
            )
            break
    return ", ".join(problems) or None


def save_model(
    path: str | os.PathLike[str], model: nn.Module, config: dict[str, Any], **extra: Any
) -> None:
    """Write ``{"format", "state_dict", "config", **extra}`` to ``path`` atomically.

    ``config`` must name ``arch`` and ``mode`` (what ``load_model`` rebuilds
    from) and hold only JSON-like values. A crash mid-write leaves any previous
    file untouched and no partial file behind.
    """
    missing = [key for key in REQUIRED_CONFIG if key not in config]
    if missing:
        raise ValueError(f"config lacks {', '.join(missing)}, needed to rebuild the model")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config must hold plain JSON values: {exc}") from None
    clashing = [key for key in extra if key in ("format", "state_dict", "config")]
    if clashing:
        raise ValueError(f"extra fields would overwrite {', '.join(clashing)}")

    record = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": dict(config),
        **extra,
    }
    with atomic_path(path) as temp_path:
        torch.save(record, temp_path)


def load_model(
    path: str | os.PathLike[str],
    *,
    expect_variant: str | None = None,
    device: str | torch.device = "cpu",
) -> tuple[FaceModel, dict[str, Any]]:
    """Rebuild a saved model; return (model in eval mode, file contents but the weights).

    The architecture is rebuilt with random weights (never touching the
    network) and then every saved tensor must fit it exactly.
    """
    path = Path(path)
    record = load_torch_file(path)
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise FaceclsError(f"{path}: not a facecls model file (format is not {MODEL_FORMAT!r})")
    config, state = record.get("config"), record.get("state_dict")
    if (
        not isinstance(config, dict)
        or not isinstance(state, dict)
        or not all(isinstance(tensor, torch.Tensor) for tensor in state.values())
        or any(key not in config for key in REQUIRED_CONFIG)
    ):
        raise FaceclsError(f"{path}: damaged facecls model file (config or state_dict missing)")
    variant = config.get("variant")
    if expect_variant is not None and variant != expect_variant:
        raise FaceclsError(f"{path}: trained as variant {variant!r}, expected {expect_variant!r}")

    arch = config["arch"]
    try:
        if config.get("members") is not None or arch == ENSEMBLE_ARCH:  # a mean of models, rebuilt from their configs
            model = build_ensemble(config.get("members"))
        else:  # random weights: the saved tensors replace them, and no network is touched
            model = build_architecture(arch, mode=config["mode"], **shape_options(config))
    except FaceclsError as exc:
        raise FaceclsError(f"{path}: {exc}") from None
    mismatch = state_dict_mismatch(model.state_dict(), state)
    if mismatch:
        raise FaceclsError(f"{path}: weights do not fit architecture {arch!r}: {mismatch}")
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return model, {key: value for key, value in record.items() if key != "state_dict"}


def load_ensemble(name: str, members: list[str], models_dir: str | os.PathLike[str] = "models"
                  ) -> tuple[EnsembleModel, dict]:
    """Load the members' model files; return (ensemble ``name`` in eval mode, info shaped like load_model's).

    ``info`` holds the ``config`` to save (arch ``ensemble`` and each member's
    rebuild config), an empty ``history`` (the members trained, not the
    ensemble), a ``summary`` whose ``train_seconds`` is the members' total:
    what the ensemble really cost to train, and whose ``precision`` is theirs;
    and ``members_info``, each member file's contents but the weights (not saved).
    """
    models, specs, seconds, cpu_seconds, trained_in, infos = [], [], 0.0, 0.0, [], []
    for variant in members:
        model, info = load_model(model_file(variant, models_dir), expect_variant=variant)
        infos.append(info)
        summary = info.get("summary") or {}
        models.append(model)
        specs.append(member_spec(info["config"]))
        seconds += float(summary.get("train_seconds") or 0.0)
        cpu_seconds += float(summary.get("train_cpu_seconds") or 0.0)
        trained_in.append(str((summary.get("precision") or {}).get("train", "unknown")))
    used = list(dict.fromkeys(str(s.get("weights_used", "unknown")) for s in specs))
    config = {"variant": name, "arch": ENSEMBLE_ARCH, "mode": "full", "members": specs,
              "weights_used": " + ".join(used)}
    summary = {"best_epoch": None, "train_seconds": round(seconds, 2), "train_cpu_seconds": round(cpu_seconds, 2),
               "members": list(members),
               "precision": {"train": " + ".join(dict.fromkeys(trained_in))}}
    return EnsembleModel(models).eval(), {"config": config, "history": [], "summary": summary, "members_info": infos}


def save_ensemble(path: str | os.PathLike[str], model: EnsembleModel, info: dict, **extra: Any) -> None:
    save_model(path, model, info["config"], history=info["history"], summary=info["summary"], **extra)
