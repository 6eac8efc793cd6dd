"""The ensemble variant: several trained variants whose probabilities are averaged.

Its members are fixed in params.yaml (``ensemble.members``), never picked by
looking at the held-out part, so the ensemble's held-out HTER (on which its
threshold is then chosen, as for any variant) is as honest as a single
variant's. It is saved as one ordinary model file, ``results/ensemble.pt``
(not under models/: the stage depends on that whole folder, the members'
files, and DVC refuses an output inside a dependency): the members' weights
plus the configs that rebuild them, so loading it runs no code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facecls.errors import FaceclsError

NAME = "ensemble"  # the variant name under which it is scored, compared and chosen
ARCH = "ensemble"
MODEL_PATH = "results/ensemble.pt"
# What rebuilding a member needs (the arguments load_model gives build_model), plus where it came from.
MEMBER_KEYS = ("variant", "arch", "mode", "dropout", "stem_stride", "weights_used")


class EnsembleModel(nn.Module):
    """Averages its members' probabilities; returns the logit of that mean, one per image.

    Returning a logit keeps it a drop-in model: ``predict_logits`` (and its
    mirror-image TTA) and ``sigmoid`` treat it like any single variant.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise FaceclsError("ensemble: no members")
        self.members = nn.ModuleList(members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(images).float() for member in self.members])  # M x N
        # logit(mean_i sigmoid(l_i)) = log mean sigmoid(l) - log mean sigmoid(-l); the log M cancels.
        # In log space it stays finite where sigmoid saturates.
        return torch.logsumexp(F.logsigmoid(logits), 0) - torch.logsumexp(F.logsigmoid(-logits), 0)


def ensemble_members(params: dict) -> list[str]:
    """The member variants named by ``ensemble.members``, checked against ``variants``."""
    section = params.get(NAME)
    if not isinstance(section, dict):
        raise FaceclsError("params.yaml: the ensemble stage needs an 'ensemble' section with 'members'")
    members = section.get("members")
    variants = params.get("variants") or {}
    if NAME in variants:
        raise FaceclsError(f"params.yaml: variants.{NAME}: the name is taken by the ensemble; rename the variant")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise FaceclsError(f"params.yaml: ensemble.members must list variant names, got {members!r}")
    unknown = [m for m in members if m not in variants]
    if unknown:
        raise FaceclsError(f"params.yaml: ensemble.members: unknown variant {unknown[0]!r} "
                           f"(variants: {', '.join(variants)})")
    if len(set(members)) != len(members):
        raise FaceclsError(f"params.yaml: ensemble.members names a variant twice: {members!r}")
    return members


def member_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a member's saved config that rebuilds it."""
    spec = {key: config[key] for key in MEMBER_KEYS if key in config}
    spec.setdefault("mode", "full")
    return spec


def build_ensemble(specs: Any) -> EnsembleModel:
    """An ensemble of freshly built (random-weight) members, ready for a saved state_dict.

    Never touches the network: each member is built with ``weights="random"``.
    """
    from facecls.models import build_model

    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) and "arch" in s for s in specs):
        raise FaceclsError("ensemble: 'members' must be a non-empty list of member configs naming their arch")
    members = []
    for spec in specs:
        if spec["arch"] == ARCH:
            raise FaceclsError("ensemble: a member cannot itself be an ensemble")
        model, _ = build_model(spec["arch"], mode=spec.get("mode", "full"), weights="random",
                               dropout=spec.get("dropout"), stem_stride=spec.get("stem_stride", 1))
        members.append(model)
    return EnsembleModel(members)


def _weights_used(specs: list[dict]) -> str:
    used = list(dict.fromkeys(str(s.get("weights_used", "unknown")) for s in specs))
    return used[0] if len(used) == 1 else " + ".join(used)


def combine(members: list[str], models_dir: str | os.PathLike[str] = "models") -> tuple[EnsembleModel, dict]:
    """Load the members' model files; return (ensemble in eval mode, info shaped like load_model's).

    ``info`` holds the ``config`` to save (arch ``ensemble`` and each member's
    rebuild config), an empty ``history`` (the members trained, not the
    ensemble) and a ``summary`` whose ``train_seconds`` is the members' total:
    what the ensemble really cost to train.
    """
    from facecls.checkpoint import load_model

    models, specs, seconds = [], [], 0.0
    for variant in members:
        model, info = load_model(Path(models_dir) / f"{variant}.pt", expect_variant=variant)
        models.append(model)
        specs.append(member_spec(info["config"]))
        seconds += float((info.get("summary") or {}).get("train_seconds") or 0.0)
    config = {"variant": NAME, "arch": ARCH, "mode": "full", "members": specs, "weights_used": _weights_used(specs)}
    summary = {"best_epoch": None, "train_seconds": round(seconds, 2), "members": list(members)}
    return EnsembleModel(models).eval(), {"config": config, "history": [], "summary": summary}


def save_ensemble(path: str | os.PathLike[str], model: EnsembleModel, info: dict) -> None:
    from facecls.checkpoint import save_model

    save_model(path, model, info["config"], history=info["history"], summary=info["summary"])

