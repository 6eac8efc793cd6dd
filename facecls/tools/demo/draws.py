"""The seeded random draws every part of a drawing makes.

Our own helpers over rng.random(): Generator.random is the stream numpy keeps
stable, unlike some distribution methods, so the drawings survive upgrades.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(rng.random())


def chance(rng: np.random.Generator, p: float) -> bool:
    return float(rng.random()) < p


def pick(rng: np.random.Generator, items: Sequence, weights: Sequence[float] | None = None):
    u = float(rng.random())
    if weights is None:
        return items[min(int(u * len(items)), len(items) - 1)]
    total = sum(weights)
    for item, weight in zip(items, weights):
        u -= weight / total
        if u < 0:
            return item
    return items[-1]


def jitter(rng: np.random.Generator, colour: Sequence[float], spread: float) -> tuple:
    return tuple(int(min(255, max(0, c + uniform(rng, -spread, spread)))) for c in colour[:3])


def direction(rng: np.random.Generator) -> tuple[float, float]:
    """A random unit vector.

    Built with sqrt, which IEEE rounds exactly everywhere, rather than cos/sin,
    whose last bit varies between maths libraries and would change pixels.
    """
    while True:
        x, y = uniform(rng, -1, 1), uniform(rng, -1, 1)
        length = math.sqrt(x * x + y * y)
        if 0.1 < length <= 1:
            return x / length, y / length
