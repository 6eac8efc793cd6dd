"""The drawing canvas: its size, the 64-pixel units the shapes are placed in, and shading."""

from __future__ import annotations

from typing import Sequence

SIZE = 64
# Drawn at 4x and box-reduced: antialiased edges without per-shape smoothing.
SUPERSAMPLE = 4


def shade(colour: Sequence[float], factor: float) -> tuple:
    return tuple(int(min(255, max(0, c * factor))) for c in colour[:3])


def px(value: float) -> float:
    """64-pixel units to canvas pixels."""
    return value * SUPERSAMPLE


def box(cx: float, cy: float, rx: float, ry: float) -> list[float]:
    return [px(cx - rx), px(cy - ry), px(cx + rx), px(cy + ry)]


def width(value: float) -> int:
    return max(1, round(px(value)))
