"""Batched image preparation and augmentation, on whatever device the batch is on.

Working on whole batches keeps per-sample Python out of the training loop.
Augmentations suit aligned faces: mirror, small shift and zoom, mild colour jitter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ImageNet statistics: right for pretrained backbones, harmless for the rest.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """N x 64 x 64 x 3 uint8 -> N x 3 x 64 x 64 float in [0, 1]."""
    return batch.permute(0, 3, 1, 2).float().div_(255)


def normalize(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _uniform(n: int, spread: float, generator: torch.Generator, device) -> torch.Tensor:
    return (torch.rand(n, generator=generator, device=device) * 2 - 1) * spread


def augment(x: torch.Tensor, *, flip: bool, shift: float, scale: float, color: float,
            generator: torch.Generator) -> torch.Tensor:
    """Randomly transform a float batch in [0, 1] (N x 3 x H x W); returns a new batch."""
    n, device = x.shape[0], x.device
    if flip:
        mirrored = torch.rand(n, generator=generator, device=device) < 0.5
        x = torch.where(mirrored.view(n, 1, 1, 1), x.flip(3), x)
    if shift > 0 or scale > 0:
        zoom = 1 + _uniform(n, scale, generator, device)
        theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
        # affine_grid works in [-1, 1], so a shift of a fraction f of the image is 2f.
        theta[:, 0, 2] = _uniform(n, 2 * shift, generator, device)
        theta[:, 1, 2] = _uniform(n, 2 * shift, generator, device)
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
    return x
