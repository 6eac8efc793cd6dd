"""Draw the demo archive: seeded 64x64 face drawings in the exercise's zip layout.

The real exercise photos cannot ship with the project, so ``data/demo-faces.zip``
is drawn here instead.  Regenerating with the same arguments gives the same
bytes (``python -m facecls.demo``), so the committed archive can be checked.

Each image gets its own random stream derived from (seed, split, index): the
first images of a small archive equal those of a big one, and nothing about an
image depends on how many others are drawn.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from facecls.errors import FaceclsError, fail_cleanly

DEFAULT_SEED = 64_2020
ROOT = "demo_faces"
SIZE = 64
# Drawn at 4x and box-reduced: antialiased edges without per-shape smoothing.
SUPERSAMPLE = 4
ACCESSORY_RATE = 0.12
ACCESSORIES = ("glasses", "sunglasses", "hat", "cap")
ACCESSORY_WEIGHTS = (0.3, 0.2, 0.25, 0.25)
LABEL_NOISE = 0.01
JPEG_QUALITY = 85
# Fixed entry metadata so the zip bytes depend only on the drawings.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16
DIR_MODE = (0o040755 << 16) | 0x10
SPLIT_CODES = {"train": 0, "val": 1}

SKIN_RAMP = np.array(
    [(255, 226, 200), (236, 194, 160), (205, 150, 110), (160, 105, 70), (105, 66, 44), (70, 45, 32)],
    dtype=float,
)
HAIR = [(22, 18, 18), (55, 38, 28), (100, 68, 42), (140, 100, 60), (212, 180, 118),
        (150, 66, 36), (150, 150, 150), (222, 220, 214), (70, 60, 150), (190, 80, 140)]
HAIR_WEIGHTS = (0.24, 0.22, 0.16, 0.1, 0.09, 0.06, 0.06, 0.03, 0.02, 0.02)
IRIS = [(70, 45, 25), (40, 28, 20), (70, 110, 160), (80, 120, 80), (110, 110, 110)]
FRAMES = [(15, 15, 15), (70, 40, 20), (120, 70, 30), (190, 160, 70), (175, 175, 180),
          (170, 30, 40), (30, 60, 150), (210, 200, 190)]
SHADES = [(12, 12, 14), (35, 30, 28), (60, 40, 25), (20, 30, 60), (25, 45, 30), (55, 55, 60)]


# Our own helpers over rng.random(): Generator.random is the stream numpy keeps
# stable, unlike some distribution methods, so the drawings survive upgrades.
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


def shade(colour: Sequence[float], factor: float) -> tuple:
    return tuple(int(min(255, max(0, c * factor))) for c in colour[:3])


def px(value: float) -> float:
    """64-pixel units to canvas pixels."""
    return value * SUPERSAMPLE


def box(cx: float, cy: float, rx: float, ry: float) -> list[float]:
    return [px(cx - rx), px(cy - ry), px(cx + rx), px(cy + ry)]


def width(value: float) -> int:
    return max(1, round(px(value)))


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


def background(rng: np.random.Generator) -> Image.Image:
    """A plain or two-colour gradient backdrop, drawn straight at 64x64."""
    first = np.array(jitter(rng, (uniform(rng, 40, 230),) * 3, 60), dtype=float)
    second = first if chance(rng, 0.3) else np.array(jitter(rng, first, 70), dtype=float)
    dx, dy = direction(rng)
    axis = np.arange(SIZE, dtype=np.float64) / (SIZE - 1) - 0.5
    along = dx * axis[None, :] + dy * axis[:, None] + 0.5
    pixels = first + (second - first) * along[..., None]
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def draw_hair_back(draw: ImageDraw.ImageDraw, face: dict, style: str, hair: tuple) -> None:
    cx, cy, hw, hh = face["cx"], face["cy"], face["hw"], face["hh"]
    if style == "long":
        bottom = cy + hh * face["hair_length"]
        draw.rounded_rectangle([px(cx - hw - 2.5), px(cy - hh * 0.6), px(cx + hw + 2.5), px(bottom)],
                               radius=px(hw * 0.6), fill=hair)
        draw.ellipse(box(cx, cy - hh * 0.15, hw + 2.5, hh * 0.95), fill=hair)
    elif style == "curly":
        for i in range(13):  # curls along the upper half of an ellipse round the head
            across = -1.1 + 2.2 * i / 12
            x = cx + (hw + 1) * across
            y = cy - hh * 0.2 - (hh + 1) * math.sqrt(max(0.0, 1 - across * across))
            draw.ellipse(box(x, y, hw * 0.38, hw * 0.38), fill=hair)


def draw_hair_top(draw: ImageDraw.ImageDraw, face: dict, style: str, hair: tuple, skin: tuple,
                  rng: np.random.Generator) -> None:
    cx, cy, hw, hh = face["cx"], face["cy"], face["hw"], face["hh"]
    top = cy - hh
    if style == "bald":
        if chance(rng, 0.5):  # a fringe of hair around the ears
            for side in (-1, 1):
                draw.ellipse(box(cx + side * hw * 0.95, face["ey"], hw * 0.11, hh * 0.18), fill=hair)
        return
    pad = uniform(rng, 0.3, 1.2) if style == "short" else uniform(rng, 1.0, 2.5)
    if style == "fringe":  # straight across, just above the eyebrows
        hairline = face["ey"] - hh * uniform(rng, 0.3, 0.42)
    elif style == "short":
        hairline = face["ey"] - hh * uniform(rng, 0.2, 0.3)
    else:
        hairline = face["ey"] - hh * uniform(rng, 0.05, 0.2)
    # Top half of an ellipse ending at the temples, then a skin-coloured
    # forehead cut from below gives a curved (often side-parted) hairline.
    draw.chord(box(cx, hairline, hw + pad, hairline - top + pad), 180, 360, fill=hair)
    # Combed strands and a ragged fringe: flat smooth tops read as caps.
    streak = shade(hair, 0.75) if sum(hair) > 150 else tuple(c + 30 for c in hair)
    crown = (px(cx + uniform(rng, -0.3, 0.3) * hw), px(top + hh * 0.05))
    for k in range(7):
        end = cx + hw * (-0.9 + 1.8 * k / 6)
        draw.line([crown, (px(end), px(hairline - 0.5))], fill=streak, width=width(0.45))
    if style == "fringe":
        tufts = int(uniform(rng, 5, 9))
        step = hw * 1.7 / tufts
        for k in range(tufts):
            left = cx - hw * 0.85 + k * step
            tip = hairline + uniform(rng, 0.8, 2.5)
            draw.polygon([(px(left), px(hairline - 0.5)), (px(left + step), px(hairline - 0.5)),
                          (px(left + step / 2), px(tip))], fill=hair)
        return
    forehead = hairline - (top + hh * uniform(rng, 0.22, 0.42))
    forehead_rx = hw * uniform(rng, 0.55, 0.8)
    part = uniform(rng, -1, 1) * (hw * 0.9 - forehead_rx)  # stays inside the face outline
    draw.ellipse(box(cx + part, hairline, forehead_rx, forehead), fill=skin)


def draw_features(draw: ImageDraw.ImageDraw, face: dict, skin: tuple, hair: tuple,
                  rng: np.random.Generator) -> None:
    cx, cy, hw, hh, ey, ex = face["cx"], face["cy"], face["hw"], face["hh"], face["ey"], face["ex"]
    rw, rh = face["eye_rx"], face["eye_ry"]
    if chance(rng, 0.18):  # beard: the jaw below the mouth line, then a moustache
        draw.chord(box(cx, cy, hw, hh), 22, 158, fill=hair)
        draw.ellipse(box(cx, cy + hh * 0.36, hw * 0.45, hh * 0.08), fill=hair)
    elif chance(rng, 0.08):
        draw.ellipse(box(cx, cy + hh * 0.37, hw * 0.4, hh * 0.06), fill=hair)
    brow = shade(hair, 0.8) if sum(hair) < 500 else shade(skin, 0.55)
    brow_y = ey - rh - hh * uniform(rng, 0.1, 0.17)
    brow_w = width(uniform(rng, 0.5, 1.5))
    lift = uniform(rng, -0.8, 0.8)
    white = jitter(rng, (240, 236, 228), 10)
    iris = pick(rng, IRIS)
    look = uniform(rng, -0.3, 0.3) * rw
    for side in (-1, 1):
        x = cx + side * ex
        inner, outer = x - side * rw * 1.2, x + side * rw * 1.2
        draw.line([px(inner), px(brow_y + lift), px(outer), px(brow_y - lift * 0.3)], fill=brow, width=brow_w)
        draw.ellipse(box(x, ey, rw, rh), fill=white)
        draw.ellipse(box(x + look, ey, rh * 0.95, rh * 0.95), fill=iris)
        draw.ellipse(box(x + look, ey, rh * 0.45, rh * 0.45), fill=(10, 8, 8))
        draw.arc(box(x, ey, rw, rh), 180, 360, fill=shade(skin, 0.45), width=width(0.5))
    nose_y = cy + hh * uniform(rng, 0.15, 0.25)
    nose = shade(skin, 0.72)
    draw.line([px(cx + 0.3), px(ey + rh), px(cx + 0.8), px(nose_y)], fill=nose, width=width(0.5))
    draw.arc(box(cx, nose_y - 0.6, hw * 0.16, 1.2), 20, 160, fill=nose, width=width(0.6))
    mouth_y = cy + hh * uniform(rng, 0.45, 0.55)
    mouth_w = hw * uniform(rng, 0.28, 0.45)
    lips = jitter(rng, shade(skin, 0.7), 8)
    lips = (min(255, lips[0] + 25), lips[1], lips[2])
    kind = pick(rng, ("smile", "closed", "open"), (0.5, 0.35, 0.15))
    if kind == "smile":
        draw.arc(box(cx, mouth_y - 1.5, mouth_w, 2.2), 15, 165, fill=lips, width=width(uniform(rng, 0.7, 1.2)))
    elif kind == "closed":
        draw.ellipse(box(cx, mouth_y, mouth_w, 0.9), fill=lips)
    else:
        draw.chord(box(cx, mouth_y - 1, mouth_w, 2.4), 0, 180, fill=(90, 25, 30), outline=lips, width=width(0.6))


def draw_glasses(layer: Image.Image, face: dict, rng: np.random.Generator, dark: bool) -> None:
    cx, ey, ex, hw = face["cx"], face["ey"], face["ex"], face["hw"]
    lens_rx = face["eye_rx"] * (uniform(rng, 1.6, 2.2) if dark else uniform(rng, 1.4, 2.0))
    lens_rx = min(lens_rx, ex * 0.92)
    shape = pick(rng, ("ellipse", "rect", "round"))
    lens_ry = lens_rx if shape == "round" else lens_rx * uniform(rng, 0.65, 0.95)
    frame = pick(rng, FRAMES) if not dark or chance(rng, 0.5) else pick(rng, SHADES[:3])
    frame_w = width(uniform(rng, 0.8, 1.6) if dark else uniform(rng, 0.35, 1.2))
    if dark:
        fill = jitter(rng, pick(rng, SHADES), 8) + (int(uniform(rng, 230, 256)),)
    else:  # see-through lenses: at most a faint tint
        fill = jitter(rng, (200, 220, 235), 30) + (int(uniform(rng, 0, 60)),)
    tint = Image.new("RGBA", layer.size, (0, 0, 0, 0))
    lenses = [box(cx + side * ex, ey + lens_ry * 0.1, lens_rx, lens_ry) for side in (-1, 1)]
    tint_draw = ImageDraw.Draw(tint)
    for lens in lenses:
        if shape == "rect":
            tint_draw.rounded_rectangle(lens, radius=px(lens_ry * 0.35), fill=fill)
        else:
            tint_draw.ellipse(lens, fill=fill)
    layer.alpha_composite(tint)
    draw = ImageDraw.Draw(layer)
    for side, lens in zip((-1, 1), lenses):
        if shape == "rect":
            draw.rounded_rectangle(lens, radius=px(lens_ry * 0.35), outline=frame, width=frame_w)
        else:
            draw.ellipse(lens, outline=frame, width=frame_w)
        outer = cx + side * (ex + lens_rx)
        draw.line([px(outer), px(ey), px(cx + side * hw), px(ey + 0.5)], fill=frame, width=frame_w)
        if dark and chance(rng, 0.5):  # glint on the lens
            gx = cx + side * ex - lens_rx * 0.4
            draw.line([px(gx), px(ey - lens_ry * 0.3), px(gx + lens_rx * 0.4), px(ey - lens_ry * 0.6)],
                      fill=(200, 200, 210), width=width(0.5))
    draw.line([px(cx - ex + lens_rx), px(ey - lens_ry * 0.2), px(cx + ex - lens_rx), px(ey - lens_ry * 0.2)],
              fill=frame, width=frame_w)


def draw_hat(draw: ImageDraw.ImageDraw, face: dict, rng: np.random.Generator) -> None:
    cx, cy, hw, hh = face["cx"], face["cy"], face["hw"], face["hh"]
    colour = jitter(rng, (uniform(rng, 20, 230), uniform(rng, 20, 230), uniform(rng, 20, 230)), 0)
    band = jitter(rng, shade(colour, uniform(rng, 0.3, 1.6)), 20)
    brim_y = cy - hh * uniform(rng, 0.45, 0.65)
    crown_rx = hw * uniform(rng, 0.85, 1.05)
    crown_h = hh * uniform(rng, 0.55, 0.9)
    if chance(rng, 0.25):  # beanie: a dome with a folded cuff, no brim
        draw.chord(box(cx, brim_y, crown_rx + 1, crown_h), 180, 360, fill=colour)
        cuff = band if chance(rng, 0.5) else shade(colour, 0.8)
        draw.rectangle([px(cx - crown_rx - 1), px(brim_y - 3), px(cx + crown_rx + 1), px(brim_y + 1.5)], fill=cuff)
        if chance(rng, 0.5):
            draw.ellipse(box(cx, brim_y - crown_h, 2.5, 2.2), fill=band)
        return
    rounded = chance(rng, 0.5)
    crown = [px(cx - crown_rx), px(brim_y - crown_h), px(cx + crown_rx), px(brim_y)]
    draw.rounded_rectangle(crown, radius=px(crown_rx * (0.6 if rounded else 0.2)), fill=colour)
    brim_rx = hw * uniform(rng, 1.3, 1.8)
    brim_ry = uniform(rng, 1.5, 3.5)
    draw.ellipse(box(cx, brim_y, brim_rx, brim_ry), fill=shade(colour, uniform(rng, 0.75, 1.0)))
    if chance(rng, 0.6):
        draw.rectangle([px(cx - crown_rx), px(brim_y - uniform(rng, 2.0, 3.5)), px(cx + crown_rx), px(brim_y - 0.6)],
                       fill=band)


def draw_cap(draw: ImageDraw.ImageDraw, face: dict, rng: np.random.Generator) -> None:
    cx, cy, hw, hh = face["cx"], face["cy"], face["hw"], face["hh"]
    colour = jitter(rng, (uniform(rng, 15, 240), uniform(rng, 15, 240), uniform(rng, 15, 240)), 0)
    visor = colour if chance(rng, 0.6) else jitter(rng, (uniform(rng, 15, 240),) * 3, 40)
    base_y = cy - hh * uniform(rng, 0.35, 0.5)
    crown_rx = hw * uniform(rng, 1.0, 1.1)
    crown_h = hh * uniform(rng, 0.6, 0.8)
    draw.chord(box(cx, base_y, crown_rx, crown_h), 180, 360, fill=colour)
    draw.ellipse(box(cx, base_y - crown_h, 1.0, 0.7), fill=shade(colour, 0.7))  # button
    if chance(rng, 0.5):  # logo on the front panel
        draw.ellipse(box(cx, base_y - crown_h * 0.45, hw * 0.22, hh * 0.1),
                     fill=jitter(rng, (255 - colour[0], 255 - colour[1], 255 - colour[2]), 30))
    shift = uniform(rng, -hw, hw) * 0.35
    visor_ry = uniform(rng, 2.0, 4.5)
    draw.chord(box(cx + shift, base_y, hw * uniform(rng, 0.8, 1.15), visor_ry), 0, 180, fill=shade(visor, 0.85))
    draw.line([px(cx - crown_rx), px(base_y), px(cx + crown_rx), px(base_y)], fill=shade(visor, 0.6),
              width=width(0.6))


def draw_face(rng: np.random.Generator, accessory: str | None) -> Image.Image:
    """One 64x64 RGB face drawing; ``accessory`` is None or one of ACCESSORIES."""
    if accessory is not None and accessory not in ACCESSORIES:
        raise FaceclsError(f"accessory {accessory!r} is not one of {', '.join(ACCESSORIES)}")
    canvas_size = (SIZE * SUPERSAMPLE, SIZE * SUPERSAMPLE)
    body = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
    layer = Image.new("RGBA", canvas_size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    hw = uniform(rng, 11.5, 15.5)
    face = {"cx": 32 + uniform(rng, -4, 4), "cy": 33 + uniform(rng, -3, 3), "hw": hw,
            "hh": hw * uniform(rng, 1.18, 1.38), "hair_length": uniform(rng, 0.5, 1.6)}
    face["ey"] = face["cy"] - face["hh"] * uniform(rng, 0.02, 0.14)
    face["ex"] = hw * uniform(rng, 0.38, 0.46)
    face["eye_rx"] = hw * uniform(rng, 0.15, 0.2)
    face["eye_ry"] = face["eye_rx"] * uniform(rng, 0.55, 0.75)
    cx, cy, hh = face["cx"], face["cy"], face["hh"]

    tone = uniform(rng, 0, len(SKIN_RAMP) - 1)
    low = int(tone)
    high = min(low + 1, len(SKIN_RAMP) - 1)
    skin = jitter(rng, SKIN_RAMP[low] + (SKIN_RAMP[high] - SKIN_RAMP[low]) * (tone - low), 8)
    hair = jitter(rng, pick(rng, HAIR, HAIR_WEIGHTS), 12)
    style = pick(rng, ("short", "long", "fringe", "curly", "bald"), (0.3, 0.3, 0.15, 0.13, 0.12))
    clothes = jitter(rng, (uniform(rng, 20, 235), uniform(rng, 20, 235), uniform(rng, 20, 235)), 0)

    # Shoulders on their own layer: only the head tilts, and the rotation
    # would otherwise cut the shoulders' edge at the canvas border.
    ImageDraw.Draw(body).ellipse([px(cx - hw * 2.3), px(cy + hh * 0.8), px(cx + hw * 2.3), px(cy + hh * 3)],
                                 fill=clothes)
    draw.rectangle([px(cx - hw * 0.42), px(cy), px(cx + hw * 0.42), px(cy + hh * 1.05)], fill=shade(skin, 0.85))
    draw_hair_back(draw, face, style, hair)
    for side in (-1, 1):
        draw.ellipse(box(cx + side * hw * 0.98, face["ey"] + hh * 0.12, hw * 0.16, hh * 0.2), fill=shade(skin, 0.9))
    draw.ellipse(box(cx, cy, hw, hh), fill=skin)
    if chance(rng, 0.3):  # rosy cheeks
        blush = Image.new("RGBA", layer.size, (0, 0, 0, 0))
        for side in (-1, 1):
            ImageDraw.Draw(blush).ellipse(box(cx + side * hw * 0.5, cy + hh * 0.2, hw * 0.2, hh * 0.12),
                                          fill=(220, 90, 90, 50))
        layer.alpha_composite(blush)
    draw_hair_top(draw, face, style, hair, skin, rng)
    draw_features(draw, face, skin, hair, rng)

    if accessory in ("glasses", "sunglasses"):
        draw_glasses(layer, face, rng, dark=accessory == "sunglasses")
    elif accessory == "hat":
        draw_hat(draw, face, rng)
    elif accessory == "cap":
        draw_cap(draw, face, rng)

    tilt = uniform(rng, -9, 9)
    # Premultiplied alpha, so transparent black does not darken the edges;
    # rotating at 2x rather than 4x is four times cheaper and looks the same.
    head = layer.convert("RGBa").reduce(SUPERSAMPLE // 2)
    head = head.rotate(tilt, resample=Image.Resampling.BILINEAR, center=(cx * 2, cy * 2)).reduce(2)
    photo = background(rng).convert("RGBA")
    photo.alpha_composite(body.convert("RGBa").reduce(SUPERSAMPLE).convert("RGBA"))
    photo.alpha_composite(head.convert("RGBA"))
    photo = photo.convert("RGB")
    if chance(rng, 0.5):
        photo = photo.filter(ImageFilter.GaussianBlur(uniform(rng, 0.2, 0.7)))
    return camera(photo, rng)


def camera(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Exposure, contrast, colour cast, side light and sensor noise.

    Only elementwise float arithmetic here (no reductions), which is exact on
    every CPU, so the result does not depend on numpy's SIMD paths.
    """
    pixels = np.asarray(photo, dtype=np.float64)
    contrast = uniform(rng, 0.75, 1.2)
    brightness = uniform(rng, -30, 30)
    cast = np.array([uniform(rng, 0.9, 1.1) for _ in range(3)])
    pixels = ((pixels - 128.0) * contrast + 128.0 + brightness) * cast
    dx, dy = direction(rng)
    strength = uniform(rng, 0, 0.35)
    axis = np.arange(SIZE, dtype=np.float64) / (SIZE - 1) - 0.5
    light = 1.0 + strength * (dx * axis[None, :] + dy * axis[:, None])
    pixels = pixels * light[..., None]
    noise = uniform(rng, 0, 5)
    pixels = pixels + (rng.random(pixels.shape) - 0.5) * (2 * noise)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def demo_image(seed: int, split: str, index: int) -> tuple[Image.Image, int]:
    """The photo and its (possibly noisy) label for image ``index`` (from 1) of ``split``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_CODES[split], index]))
    accessory = pick(rng, ACCESSORIES, ACCESSORY_WEIGHTS) if chance(rng, ACCESSORY_RATE) else None
    label = 0 if accessory else 1
    if chance(rng, LABEL_NOISE):  # real annotations have a few wrong labels
        label = 1 - label
    return draw_face(rng, accessory), label


def jpeg_bytes(photo: Image.Image) -> bytes:
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling="4:2:0", optimize=False,
               progressive=False)
    return buffer.getvalue()


def zip_entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = 3  # unix, so the modes below mean the same everywhere
    info.external_attr = DIR_MODE if name.endswith("/") else FILE_MODE
    info.compress_type = zipfile.ZIP_STORED  # JPEGs don't shrink; no zlib-version drift
    return info


def labels_text(labels: list[int]) -> str:
    return "".join(f"{label}\n" for label in labels)


def write_atomically(path: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Call ``fill(file)`` on a temp file beside ``path``, then move it into place."""
    if not path.parent.is_dir():
        raise FaceclsError(f"{path}: folder {path.parent} does not exist")
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            fill(file)
        os.chmod(temp, 0o644)  # mkstemp's 0600 would follow the file into the repo
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def write_demo_archive(path: str | os.PathLike, *, n_train: int = 3000, n_val: int = 600,
                       seed: int = DEFAULT_SEED, truth_path: str | os.PathLike | None = None) -> dict:
    """Write the demo zip (and the val labels to ``truth_path`` if given).

    Returns image counts per split and label: {"train": {0: .., 1: ..}, "val": {...}}.
    """
    for name, count in (("n_train", n_train), ("n_val", n_val)):
        if not isinstance(count, int) or count < 1:
            raise FaceclsError(f"{name}: {count!r} is not a positive whole number")
    if not isinstance(seed, int) or seed < 0:
        raise FaceclsError(f"seed: {seed!r} is not a non-negative whole number")
    labels: dict[str, list[int]] = {}

    def fill(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr(zip_entry(f"{ROOT}/"), b"")
            for split, count in (("train", n_train), ("val", n_val)):
                archive.writestr(zip_entry(f"{ROOT}/{split}_img/"), b"")
                labels[split] = []
                for index in range(1, count + 1):
                    photo, label = demo_image(seed, split, index)
                    labels[split].append(label)
                    archive.writestr(zip_entry(f"{ROOT}/{split}_img/{index:06d}.jpg"), jpeg_bytes(photo))
                if split == "train":  # val labels are the hidden truth, kept out of the zip
                    archive.writestr(zip_entry(f"{ROOT}/label_train.txt"), labels_text(labels[split]))

    write_atomically(Path(path), fill)
    if truth_path is not None:
        write_atomically(Path(truth_path), lambda file: file.write(labels_text(labels["val"]).encode()))
    return {split: {label: values.count(label) for label in (0, 1)} for split, values in labels.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facecls.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/demo-faces.zip", help="zip to write (default: %(default)s)")
    parser.add_argument("--truth", default="data/demo-faces-val-truth.txt",
                        help="val labels to write beside it (default: %(default)s)")
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-val", type=int, default=600)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    counts = write_demo_archive(args.out, n_train=args.n_train, n_val=args.n_val, seed=args.seed,
                                truth_path=args.truth)
    megabytes = os.path.getsize(args.out) / 1e6
    summary = ", ".join(f"{split} {c[0]} accessory / {c[1]} none" for split, c in counts.items())
    print(f"wrote {args.out} ({megabytes:.2f} MB): {summary}; val truth in {args.truth}")


if __name__ == "__main__":
    fail_cleanly(main)()
