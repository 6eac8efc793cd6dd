"""Averaged weights (``train.ema``): an exponential moving average of the weights, updated after
every optimizer step, which early stopping, the tune threshold, scoring and the saved model then
use in place of the raw weights.

torch's ``AveragedModel`` keeps the copy and its step count (a buffer, so a resumed run carries
on where it stopped); the update rule is ours for one reason: it warms up. A plain EMA at 0.998
still holds 0.998^200 = 67 % of the random initialisation after 200 steps, which on a few
thousand faces is several epochs of useless averaged weights for early stopping to read; with
the warm-up the decay at step n is min(decay, (1 + n) / (10 + n)), so early averages cover the
few steps there are (as timm's ModelEmaV2 does).
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel


def _warmed_up_ema(decay: float):
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, weight)
        else:  # BatchNorm's batch counters: integers, taken as they are
            for a, c in zip(averaged, current):
                a.copy_(c)
    return update


def averaged_copy(model: torch.nn.Module, decay: float) -> AveragedModel | None:
    """An averaged copy of ``model``, brought up to date by its ``update_parameters(model)`` after
    each step; None when ``decay`` is 0 (off).
    BatchNorm's running statistics are averaged too, so they match the averaged weights."""
    if not decay:
        return None
    return AveragedModel(model, multi_avg_fn=_warmed_up_ema(decay), use_buffers=True)
