"""Image files: which number each one carries, and decoding to 64x64 RGB uint8.

The number in a file name is what ties an image to its label line and to its
place in label_val.txt, so names are parsed as numbers, never sorted as text
(``9.jpg`` comes before ``10.jpg``).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from facecls.errors import FaceclsError

SIZE = 64
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_NUMBERED = re.compile(r"^(\d+)$")


def _visible_files(folder: Path) -> list[os.DirEntry]:
    # Dot files (.DS_Store, editor leftovers) are never images of the set.
    return [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]


def count_files(folder: Path) -> int:
    return len(_visible_files(folder))


def list_numbered_images(folder: str | Path) -> tuple[list[tuple[int, Path]], list[int]]:
    """The images of ``folder`` in numeric order, and the numbers missing between them.

    A file that is not ``<number>.<image suffix>`` or a number used twice is an error
    naming the file: it would silently shift labels or output lines otherwise.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceclsError(f"{folder}: folder not found")
    by_number: dict[int, Path] = {}
    for entry in _visible_files(folder):
        path = folder / entry.name
        stem, suffix = os.path.splitext(entry.name)
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise FaceclsError(f"{path}: not an image file (expected .jpg or .png)")
        if not _NUMBERED.match(stem):
            raise FaceclsError(f"{path}: file name is not a number, so it cannot be ordered or labelled")
        number = int(stem)
        if number in by_number:
            raise FaceclsError(f"{path}: number {number} is used twice (also {by_number[number].name})")
        by_number[number] = path
    if not by_number:
        raise FaceclsError(f"{folder}: holds no images")
    numbers = sorted(by_number)
    gaps = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    return [(n, by_number[n]) for n in numbers], gaps


def decode_image(data: bytes, source: str) -> tuple[np.ndarray, bool]:
    """A 64x64x3 uint8 array from encoded bytes, and whether it had to be resized.

    Grayscale, palette, RGBA and CMYK images are converted to RGB; other sizes
    are resized (bicubic) since the models expect 64x64.
    """
    if not data:
        raise FaceclsError(f"{source}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > 4096 * 4096:
                    raise FaceclsError(f"{source}: image of {img.width}x{img.height} is far too large")
                img.load()
                rgb = img.convert("RGB")
    except FaceclsError:
        raise
    except UnidentifiedImageError:
        raise FaceclsError(f"{source}: not an image this pipeline can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise FaceclsError(f"{source}: corrupt or truncated image ({exc})") from None
    resized = rgb.size != (SIZE, SIZE)
    if resized:
        rgb = rgb.resize((SIZE, SIZE), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.uint8), resized
