"""Models whose probabilities are averaged: a variant's fold models (what cross-validated
training delivers), and the ensembles, several variants averaged, each scored as a variant of its own.

An ensemble's members are fixed in params.yaml (``ensembles.<name>``), never
picked by looking at the faces it is scored on, so its figures are as honest as
a single variant's. Each is saved as one ordinary model file: the members'
weights plus the configs that rebuild them (``members``, nested for an ensemble
of variants), so loading it runs no code from the file.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facecls.errors import FaceclsError
from facecls.models.architectures import SHAPE_KEYS, build_architecture, shape_options

SECTION = "ensembles"  # params.yaml: each ensemble's name (scored, compared and chosen under it) -> its members
ARCH = "ensemble"
# What rebuilding a member needs (the arguments load_model gives build_model), plus where it came from.
MEMBER_KEYS = ("variant", "arch", "mode", *SHAPE_KEYS, "weights_used", "fold")


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


def ensemble_names(params: dict) -> list[str]:
    """The names in ``ensembles`` (none when it is empty or absent), each of which dvc.yaml makes an
    ``ensemble@<name>`` stage."""
    section = params.get(SECTION)
    if section is None:
        return []
    if not isinstance(section, dict):
        raise FaceclsError(f"params.yaml: {SECTION} must map each ensemble's name to its member variants, "
                           f"got {section!r}")
    return list(section)


def ensemble_members(params: dict, name: str, tracked: list[str] | None = None) -> list[str]:
    """The member variants of ensemble ``name`` (``ensembles.<name>``), checked against ``variants`` and,
    when given, against ``tracked``: the members whose model files its stage depends on in dvc.yaml
    (which cannot loop over a list, so it names each member's file)."""
    names = ensemble_names(params)
    if name not in names:
        raise FaceclsError(f"params.yaml: {SECTION} has no {name!r} ({SECTION}: {', '.join(names) or 'none'})")
    key = f"{SECTION}.{name}"
    members = params[SECTION][name]
    variants = params.get("variants") or {}
    if name in variants:
        raise FaceclsError(f"params.yaml: {key}: the name is taken by a variant; rename the ensemble")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise FaceclsError(f"params.yaml: {key} must list variant names, got {members!r}")
    unknown = [m for m in members if m not in variants]
    if unknown:
        raise FaceclsError(f"params.yaml: {key}: unknown variant {unknown[0]!r} (variants: {', '.join(variants)})")
    if len(set(members)) != len(members):
        raise FaceclsError(f"params.yaml: {key} names a variant twice: {members!r}")
    if tracked is not None and len(tracked) == len(members) and tracked != members:
        raise FaceclsError(f"params.yaml: {key} is {members!r} but its stage was given {tracked!r}: run it "
                           "through dvc.yaml, which passes the members")
    if tracked is not None and tracked != members:
        raise FaceclsError(f"params.yaml: {key} lists {len(members)} variants but the ensemble stage in dvc.yaml "
                           f"tracks the model files of {len(tracked)}: give its deps and its command one "
                           "models/${item[i]}.pt / argument per member")
    return members


def member_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a member's saved config that rebuilds it (its own members too, when it is a mean)."""
    spec = {key: config[key] for key in MEMBER_KEYS if key in config}
    spec.setdefault("mode", "full")
    if config.get("members") is not None:
        spec["members"] = [member_spec(member) for member in config["members"]]
    return spec


def build_ensemble(specs: Any) -> EnsembleModel:
    """An ensemble of freshly built (random-weight) members, ready for a saved state_dict; a member
    that is a mean itself (``members``) is built as one.

    Never touches the network: each member is built with ``weights="random"``.
    """
    if not isinstance(specs, list) or not specs or not all(isinstance(s, dict) and "arch" in s for s in specs):
        raise FaceclsError("ensemble: 'members' must be a non-empty list of member configs naming their arch")
    members = []
    for spec in specs:
        if spec.get("members") is not None:
            members.append(build_ensemble(spec["members"]))
        elif spec["arch"] == ARCH:
            raise FaceclsError("ensemble: a member names arch ensemble but lists no members")
        else:
            members.append(build_architecture(spec["arch"], mode=spec.get("mode", "full"), **shape_options(spec)))
    return EnsembleModel(members)


def families(config: dict[str, Any]) -> list[str]:
    """The architectures a saved model computes with: its own, or its members' (at any depth)."""
    if config.get("members"):
        return list(dict.fromkeys(arch for member in config["members"] for arch in families(member)))
    return [config["arch"]]
