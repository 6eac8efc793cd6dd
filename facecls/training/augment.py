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
KNOBS = ("flip", "shift", "scale", "color", "rotate", "erase", "translate")


def augment(x: torch.Tensor, generator: torch.Generator, *, flip: bool = False, shift: float = 0.0,
            scale: float = 0.0, color: float = 0.0, rotate: float = 0.0, erase: float = 0.0,
            translate: int = 0) -> torch.Tensor:
    """Randomly transform a float batch in [0, 1] (N x 3 x H x W); returns a new batch.

    ``rotate``: max rotation in degrees (aligned faces: a few degrees of head tilt).
    ``erase``: the share of faces that get one random rectangle (1/8 to 1/3 of each
    side) filled with their mean colour, so no single patch decides the label.
    ``translate``: the whole batch moved by one draw of whole pixels, up to ``translate``
    each way, the edge pixels repeated into the gap (as fast small-image recipes do: one
    crop of a padded batch, no resampling). ``shift`` is the per-face, sub-pixel kind.
    Every knob defaults to off. ``rotate``, ``erase`` and ``translate`` draw no random
    numbers when off: the other transforms see the same random stream as without them.

    On CPU this work shares the cores with the model step, so each transform is one
    pass over the batch: the mirror folds into the geometry's sampling grid, and
    brightness, contrast and saturation into one 3 x 3 colour matrix per face. With a
    pass per operation (about 12) the SimpleCNN loop ran at 0.93 of the bare step on
    2 cores; one pass each, 0.98 (100-step blocks, interleaved).
    """
    n, device = x.shape[0], x.device
    mirrored = torch.rand(n, generator=generator, device=device) < 0.5 if flip else None
    if shift > 0 or scale > 0 or rotate > 0:
        x = _geometry(x, generator, mirrored, shift=shift, scale=scale, rotate=rotate)
    elif mirrored is not None:
        x = torch.where(mirrored.view(n, 1, 1, 1), x.flip(3), x)
    if color > 0:
        x = _colour(x, generator, color)
    if erase > 0:
        x = _erase(x, erase, generator)
    if translate > 0:
        x = _translate(x, translate, generator)
    return x


def _translate(x: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """The batch moved by (dy, dx), each drawn from -pixels .. pixels, with replicated edges."""
    h, w = x.shape[2:]
    dy, dx = torch.randint(0, 2 * pixels + 1, (2,), generator=generator, device=x.device).tolist()
    padded = F.pad(x, (pixels, pixels, pixels, pixels), mode="replicate")
    return padded[:, :, dy:dy + h, dx:dx + w]


def _geometry(x: torch.Tensor, generator: torch.Generator, mirrored: torch.Tensor | None, *,
              shift: float, scale: float, rotate: float) -> torch.Tensor:
    """Zoom, shift and tilt (then the mirror, when drawn) as one bilinear resampling."""
    n, _, h, w = x.shape
    device = x.device
    zoom = 1 + _uniform(n, scale, generator, device)
    # Sampling coordinates work in [-1, 1], so a shift of a fraction f of the image is 2f.
    shift_x = _uniform(n, 2 * shift, generator, device)
    shift_y = _uniform(n, 2 * shift, generator, device)
    if rotate > 0:
        angle = torch.deg2rad(_uniform(n, rotate, generator, device))
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    else:
        cos, sin = 1 / zoom, torch.zeros_like(zoom)
    # Output pixel (u, v) samples the input at A (u, v, 1); mirroring the input first is the
    # same as negating A's first row. Pixel centres as affine_grid places them (align_corners=False).
    row_x = torch.stack([cos, -sin, shift_x], 1)
    if mirrored is not None:
        row_x = torch.where(mirrored.view(n, 1), -row_x, row_x)
    row_y = torch.stack([sin, cos, shift_y], 1)
    u = ((torch.arange(w, device=device, dtype=x.dtype) * 2 + 1) / w - 1).view(1, 1, w)
    v = ((torch.arange(h, device=device, dtype=x.dtype) * 2 + 1) / h - 1).view(1, h, 1)

    def coordinate(row: torch.Tensor) -> torch.Tensor:
        a, b, c = (row[:, k].to(x.dtype).view(n, 1, 1) for k in range(3))
        return a * u + b * v + c

    grid = torch.stack([coordinate(row_x), coordinate(row_y)], 3)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# Luma weights of the grey a face's saturation moves towards or away from (they sum to 1).
_GREY = (0.299, 0.587, 0.114)


def _colour(x: torch.Tensor, generator: torch.Generator, spread: float) -> torch.Tensor:
    """Brightness b, contrast c (about the face's mean m), saturation s (about its grey), clamped to [0, 1].

    Applied in turn they are linear in the pixel: c b (s I + (1 - s) 1 g^T) x + (1 - c) b m,
    with g the luma weights, so one matrix and one offset per face do all three.
    """
    n, channels, h, w = x.shape
    device = x.device
    brightness, contrast, saturation = (1 + _uniform(n, spread, generator, device) for _ in range(3))
    grey = torch.tensor(_GREY, device=device, dtype=x.dtype).expand(channels, channels)
    eye = torch.eye(channels, device=device, dtype=x.dtype)
    s = saturation.to(x.dtype).view(n, 1, 1)
    cb = (contrast * brightness).to(x.dtype).view(n, 1, 1)
    matrix = cb * (s * eye + (1 - s) * grey)
    offset = ((1 - contrast) * brightness).to(x.dtype).view(n, 1, 1) * x.mean(dim=(1, 2, 3)).view(n, 1, 1)
    pixels = x.reshape(n, channels, h * w)
    return torch.baddbmm(offset, matrix, pixels).clamp_(0, 1).view(n, channels, h, w)


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
