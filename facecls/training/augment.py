"""Batched augmentation, on whatever device the batch is on.

Working on whole batches keeps per-sample Python out of the training loop.
Augmentations suit aligned faces: mirror, small shift and zoom, mild colour jitter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform(n: int, spread: float, generator: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * spread


# The knobs of train.augment (the keyword arguments of ``augment``).
KNOBS = ("flip", "shift", "scale", "color", "rotate", "erase")


def augment(x: torch.Tensor, generator: torch.Generator, *, flip: bool = False, shift: float = 0.0,
            scale: float = 0.0, color: float = 0.0, rotate: float = 0.0, erase: float = 0.0) -> torch.Tensor:
    """Randomly transform a float batch in [0, 1] (N x 3 x H x W); returns a new batch.

    ``rotate``: max rotation in degrees (aligned faces: a few degrees of head tilt).
    ``erase``: the share of faces that get one random rectangle (1/8 to 1/3 of each
    side) filled with their mean colour, so no single patch decides the label.
    Every knob defaults to off. ``rotate`` and ``erase`` draw no random numbers
    when off: the other transforms see the same random stream as without them.
    """
    n, device = x.shape[0], x.device
    if flip:
        mirrored = torch.rand(n, generator=generator, device=device) < 0.5
        x = torch.where(mirrored.view(n, 1, 1, 1), x.flip(3), x)
    if shift > 0 or scale > 0 or rotate > 0:
        zoom = 1 + _uniform(n, scale, generator, device)
        theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
        # affine_grid works in [-1, 1], so a shift of a fraction f of the image is 2f.
        theta[:, 0, 2] = _uniform(n, 2 * shift, generator, device)
        theta[:, 1, 2] = _uniform(n, 2 * shift, generator, device)
        if rotate > 0:
            angle = torch.deg2rad(_uniform(n, rotate, generator, device)).to(x.dtype)
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
            theta[:, 1, 0], theta[:, 1, 1] = sin, cos
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if color > 0:
        brightness = (1 + _uniform(n, color, generator, device)).view(n, 1, 1, 1)
        contrast = (1 + _uniform(n, color, generator, device)).view(n, 1, 1, 1)
        saturation = (1 + _uniform(n, color, generator, device)).view(n, 1, 1, 1)
        x = x * brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean
        gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - gray) * saturation + gray
        x = x.clamp_(0, 1)
    if erase > 0:
        x = _erase(x, erase, generator)
    return x


def _erase(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """One rectangle per chosen face, filled with that face's mean colour; batched, no per-face loop."""
    n, _, h, w = x.shape
    device = x.device
    chosen = torch.rand(n, generator=generator, device=device) < probability
    size = (1 / 8 + torch.rand(n, 2, generator=generator, device=device) * (1 / 3 - 1 / 8)) * torch.tensor(
        [h, w], device=device)
    corner = torch.rand(n, 2, generator=generator, device=device) * (torch.tensor([h, w], device=device) - size)
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    top, left = corner[:, 0].view(n, 1, 1), corner[:, 1].view(n, 1, 1)
    inside = ((rows >= top) & (rows < top + size[:, 0].view(n, 1, 1))
              & (cols >= left) & (cols < left + size[:, 1].view(n, 1, 1)) & chosen.view(n, 1, 1))
    return torch.where(inside.unsqueeze(1), x.mean(dim=(2, 3), keepdim=True), x)
