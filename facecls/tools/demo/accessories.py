"""The accessories a demo face may wear (the faces labelled 0): glasses, sunglasses, a hat or a cap."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facecls.tools.demo.canvas import box, px, shade, width
from facecls.tools.demo.draws import chance, jitter, pick, uniform

ACCESSORIES = ("glasses", "sunglasses", "hat", "cap")
ACCESSORY_WEIGHTS = (0.3, 0.2, 0.25, 0.25)
# Frame and lens colours.
FRAMES = [(15, 15, 15), (70, 40, 20), (120, 70, 30), (190, 160, 70), (175, 175, 180),
          (170, 30, 40), (30, 60, 150), (210, 200, 190)]
SHADES = [(12, 12, 14), (35, 30, 28), (60, 40, 25), (20, 30, 60), (25, 45, 30), (55, 55, 60)]


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


def draw_accessory(layer: Image.Image, draw: ImageDraw.ImageDraw, face: dict, rng: np.random.Generator,
                   accessory: str) -> None:
    """``accessory`` (one of ACCESSORIES) over the head drawn on ``layer``."""
    if accessory in ("glasses", "sunglasses"):
        draw_glasses(layer, face, rng, dark=accessory == "sunglasses")
    elif accessory == "hat":
        draw_hat(draw, face, rng)
    elif accessory == "cap":
        draw_cap(draw, face, rng)
