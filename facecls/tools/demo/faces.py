"""One demo face: backdrop, shoulders, head, hair, features, an optional accessory, then a camera's flaws."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from facecls.errors import FaceclsError
from facecls.tools.demo.accessories import ACCESSORIES, draw_accessory
from facecls.tools.demo.canvas import SIZE, SUPERSAMPLE, box, px, shade, width
from facecls.tools.demo.draws import chance, direction, jitter, pick, uniform

SKIN_RAMP = np.array(
    [(255, 226, 200), (236, 194, 160), (205, 150, 110), (160, 105, 70), (105, 66, 44), (70, 45, 32)],
    dtype=float,
)
HAIR = [(22, 18, 18), (55, 38, 28), (100, 68, 42), (140, 100, 60), (212, 180, 118),
        (150, 66, 36), (150, 150, 150), (222, 220, 214), (70, 60, 150), (190, 80, 140)]
HAIR_WEIGHTS = (0.24, 0.22, 0.16, 0.1, 0.09, 0.06, 0.06, 0.03, 0.02, 0.02)
IRIS = [(70, 45, 25), (40, 28, 20), (70, 110, 160), (80, 120, 80), (110, 110, 110)]


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

    if accessory is not None:
        draw_accessory(layer, draw, face, rng, accessory)

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
