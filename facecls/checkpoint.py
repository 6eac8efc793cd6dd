"""Trained-model files: weights plus the config needed to rebuild the model.

Files hold only tensors and plain values, so loading them with
``weights_only=True`` never runs code from the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facecls.atomic import atomic_path
from facecls.errors import FaceclsError
from facecls.models import FaceModel, build_model, load_torch_file, state_dict_mismatch

MODEL_FORMAT = "facecls-model-1"
REQUIRED_CONFIG = ("arch", "mode")


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
        if arch == "ensemble":  # several variants averaged (facecls/ensemble.py), rebuilt from their configs
            from facecls.ensemble import build_ensemble

            model = build_ensemble(config.get("members"))
        else:
            model, _ = build_model(
                arch,
                mode=config["mode"],
                weights="random",
                dropout=config.get("dropout"),
                stem_stride=config.get("stem_stride", 1),
            )
    except FaceclsError as exc:
        raise FaceclsError(f"{path}: {exc}") from None
    mismatch = state_dict_mismatch(model.state_dict(), state)
    if mismatch:
        raise FaceclsError(f"{path}: weights do not fit architecture {arch!r}: {mismatch}")
    model.load_state_dict(state, strict=True)
    model.to(device).eval()
    return model, {key: value for key, value in record.items() if key != "state_dict"}
