"""Batched augmentation: each transform does what it says, off means untouched."""

from __future__ import annotations

import pytest
import torch

from facecls.models.inference import normalize, to_float
from facecls.training.augment import augment

OFF = {"flip": False, "shift": 0.0, "scale": 0.0, "color": 0.0}
DEFAULTS = {"flip": True, "shift": 0.06, "scale": 0.08, "color": 0.1}


def batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_everything_off_is_the_identity():
    x = batch()
    assert torch.equal(augment(x, **OFF, generator=gen()), x)
    assert torch.equal(augment(x, **OFF, rotate=0.0, erase=0.0, generator=gen()), x)


def test_input_untouched_output_in_range_and_seeded():
    x = batch()
    before = x.clone()
    a = augment(x, **DEFAULTS, rotate=8.0, erase=0.5, generator=gen(3))
    b = augment(x, **DEFAULTS, rotate=8.0, erase=0.5, generator=gen(3))
    assert torch.equal(x, before)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.equal(a, augment(x, **DEFAULTS, rotate=8.0, erase=0.5, generator=gen(4)))


def test_new_options_off_leave_the_random_stream_of_the_others_alone():
    # The study's settings must give the very same batches as before rotate/erase existed.
    x = batch()
    assert torch.equal(augment(x, **DEFAULTS, generator=gen(5)),
                       augment(x, **DEFAULTS, rotate=0.0, erase=0.0, generator=gen(5)))


def test_flip_gives_each_face_or_its_mirror():
    x = batch(32)
    y = augment(x, **{**OFF, "flip": True}, generator=gen())
    same = (y == x).flatten(1).all(1)
    mirrored = (y == x.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all()
    assert same.any() and mirrored.any()


def _draws(seed: int, n: int, count: int, spread: float) -> list[torch.Tensor]:
    """The first ``count`` draws augment makes, as uniform numbers in [-spread, spread]."""
    g = gen(seed)
    return [(torch.rand(n, generator=g) * 2 - 1) * spread for _ in range(count)]


def test_colour_is_brightness_then_contrast_then_saturation():
    # Computed as one matrix per face: the same as the three jitters applied in turn.
    x = batch(16)
    brightness, contrast, saturation = (1 + d.view(-1, 1, 1, 1) for d in _draws(9, 16, 3, 0.3))
    expected = x * brightness
    mean = expected.mean(dim=(1, 2, 3), keepdim=True)
    expected = (expected - mean) * contrast + mean
    grey = 0.299 * expected[:, 0:1] + 0.587 * expected[:, 1:2] + 0.114 * expected[:, 2:3]
    expected = ((expected - grey) * saturation + grey).clamp(0, 1)
    y = augment(x, **{**OFF, "color": 0.3}, generator=gen(9))
    assert torch.allclose(y, expected, atol=1e-5)
    assert not torch.allclose(y, x, atol=1e-2)


def test_mirror_then_shift_and_zoom_is_one_resampling_of_the_mirrored_face():
    x = batch(16)
    g = gen(11)
    mirrored = torch.rand(16, generator=g) < 0.5
    zoom, dx, dy = (torch.rand(16, generator=g) * 2 - 1 for _ in range(3))
    zoom, dx, dy = 1 + zoom * 0.1, dx * 0.2, dy * 0.2
    theta = torch.zeros(16, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, 0, 2], theta[:, 1, 2] = dx, dy
    flipped = torch.where(mirrored.view(16, 1, 1, 1), x.flip(3), x)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    expected = torch.nn.functional.grid_sample(flipped, grid, padding_mode="border", align_corners=False)
    y = augment(x, **{**OFF, "flip": True, "shift": 0.1, "scale": 0.1}, generator=gen(11))
    assert torch.allclose(y, expected, atol=1e-5)
    assert mirrored.any() and not mirrored.all()


def test_rotation_tilts_a_horizontal_bar():
    x = torch.zeros(16, 3, 64, 64)
    x[:, :, 30:34, 8:56] = 1.0  # a bar across the eyes
    y = augment(x, **OFF, rotate=20.0, generator=gen())
    rows_of_left_end = y[:, 0, :, 12].argmax(1).float()
    rows_of_right_end = y[:, 0, :, 52].argmax(1).float()
    tilt = (rows_of_right_end - rows_of_left_end).abs()
    assert tilt.max() >= 4  # some faces tilted by several pixels over the bar's length
    assert tilt.max() <= 40 * torch.tan(torch.deg2rad(torch.tensor(20.0))) + 4  # never more than 20 degrees
    # the centre hardly moves: rotation is about the middle of the face
    assert (y[:, :, 31:33, 31:33] > 0.5).all()


def test_erase_fills_one_rectangle_per_face_with_its_mean_colour():
    x = batch(12)
    y = augment(x, **OFF, erase=1.0, generator=gen())
    changed = (y != x).any(1)  # N x H x W
    for i in range(len(x)):
        rows = changed[i].any(1).nonzero().flatten()
        cols = changed[i].any(0).nonzero().flatten()
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert 64 / 8 - 1 <= h <= 64 / 3 + 1 and 64 / 8 - 1 <= w <= 64 / 3 + 1
        patch = y[i, :, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert torch.allclose(patch, x[i].mean(dim=(1, 2)).view(3, 1, 1).expand_as(patch))


@pytest.mark.parametrize("probability, low, high", [(0.0, 0, 0), (0.5, 8, 56)])
def test_erase_probability_is_the_share_of_faces_erased(probability, low, high):
    x = batch(64)
    y = augment(x, **OFF, erase=probability, generator=gen())
    erased = int((y != x).flatten(1).any(1).sum())
    assert low <= erased <= high


def test_to_float_and_normalize_shapes():
    images = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    x = to_float(images)
    assert x.shape == (2, 3, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert normalize(x).shape == x.shape


def test_translate_moves_the_whole_batch_by_whole_pixels_repeating_the_edges():
    x = batch(n=4)
    moved = augment(x, **OFF, translate=4, generator=gen(5))
    offsets = set()
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="replicate")
            if torch.equal(moved, padded[:, :, 4 + dy:68 + dy, 4 + dx:68 + dx]):
                offsets.add((dy, dx))
    assert len(offsets) == 1, "one shift of the whole batch, within 4 pixels each way"
    draws = {tuple(augment(x, **OFF, translate=4, generator=gen(s))[0, 0, 10, 10:12].tolist()) for s in range(30)}
    assert len(draws) > 5, "the shift is drawn anew"
    assert torch.equal(augment(x, **OFF, translate=0, generator=gen(5)), x)
