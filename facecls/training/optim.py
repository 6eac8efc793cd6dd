"""Optimizers and learning-rate schedules, by the names params.yaml uses."""

from __future__ import annotations

import math
from typing import Callable

import torch

OPTIMIZERS: dict[str, Callable[[list[dict], float], torch.optim.Optimizer]] = {
    "adamw": lambda groups, weight_decay: torch.optim.AdamW(groups, weight_decay=weight_decay),
    "adam": lambda groups, weight_decay: torch.optim.Adam(groups, weight_decay=weight_decay),
    "sgd": lambda groups, weight_decay: torch.optim.SGD(groups, momentum=0.9, nesterov=True,
                                                        weight_decay=weight_decay),
}


def _one_cycle(progress: float) -> float:
    # A cosine warm-up over the first 30 % from 1/25, then a cosine decay to ~0.
    warm = 0.3
    if progress < warm:
        return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * progress / warm))
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm)))


SCHEDULES: dict[str, Callable[[float], float]] = {
    "onecycle": _one_cycle,
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
    "constant": lambda progress: 1.0,
}


def make_optimizer(name: str, groups: list[dict], weight_decay: float) -> torch.optim.Optimizer:
    """The optimizer over ``groups``; each group remembers its ``base_lr`` for the schedule."""
    for group in groups:
        group["base_lr"] = group["lr"]
    return OPTIMIZERS[name](groups, weight_decay)


def lr_multiplier(schedule: str, step: int, total_steps: int) -> float:
    """Fraction of the base LR at ``step``: a pure function, so resuming needs no scheduler state."""
    return SCHEDULES[schedule](min(step / max(total_steps, 1), 1.0))


def set_learning_rates(optimizer: torch.optim.Optimizer, schedule: str, step: int, total_steps: int) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * lr_multiplier(schedule, step, total_steps)
