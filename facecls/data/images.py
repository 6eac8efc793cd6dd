"""Image files: which number each one carries, and decoding to 64x64 RGB uint8.

The number in a file name is what ties an image to its label line and to its
place in label_val.txt, so names are parsed as numbers, never sorted as text
(``9.jpg`` comes before ``10.jpg``).
"""

from __future__ import annotations

import bisect
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from facecls.errors import FaceclsError, one_line

SIZE = 64
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# ASCII digits only: \d would also take Arabic-Indic or fullwidth digits, and
# "$" would accept a name ending in a newline.
_NUMBERED = re.compile(r"[0-9]+")


def is_listed(name: str) -> bool:
    """Whether a file of an image folder belongs to the set: dot files (.DS_Store, editor
    leftovers, the ``._1.jpg`` forks macOS adds) never do."""
    return not name.startswith(".")


class MissingNumbers(Sequence):
    """The numbers absent from a sorted numbering, from 1 (or 0) up to its last number.

    Kept as runs rather than a list: one stray ``20230101123456.jpg`` would
    otherwise mean trillions of missing numbers in memory.
    """

    def __init__(self, numbers: list[int]) -> None:
        self._runs: list[tuple[int, int]] = []  # (first missing, how many)
        self._ends: list[int] = []  # cumulative count at the end of each run
        previous = min(numbers[0], 1) - 1
        for number in numbers:
            if number > previous + 1:
                self._runs.append((previous + 1, number - previous - 1))
                self._ends.append((self._ends[-1] if self._ends else 0) + number - previous - 1)
            previous = number

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        run = bisect.bisect_right(self._ends, index)
        first, _ = self._runs[run]
        return first + index - (self._ends[run - 1] if run else 0)


def order_by_number(names: Iterable[str], source: Callable[[str], str],
                    folder: str) -> tuple[list[tuple[int, str]], MissingNumbers]:
    """``names`` (of one folder, on disk or in an archive) in numeric order, and the numbers
    missing up to the last one. A name that is not ``<number>.<image suffix>`` or a number
    used twice is an error naming the file (``source(name)``): it would silently shift labels
    or output lines otherwise; ``folder`` names the folder when it holds no image at all."""
    by_number: dict[int, str] = {}
    for name in names:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in IMAGE_SUFFIXES:
            raise FaceclsError(f"{source(name)}: not an image file (expected .jpg or .png)")
        if not _NUMBERED.fullmatch(stem):
            raise FaceclsError(f"{source(name)}: file name is not a number, so it cannot be ordered or labelled")
        number = int(stem)
        if number in by_number:
            raise FaceclsError(f"{source(name)}: number {number} is used twice (also {by_number[number]})")
        by_number[number] = name
    if not by_number:
        raise FaceclsError(f"{folder}: holds no images")
    numbers = sorted(by_number)
    return [(n, by_number[n]) for n in numbers], MissingNumbers(numbers)


def list_numbered_images(folder: str | Path) -> tuple[list[tuple[int, Path]], MissingNumbers]:
    """The images of ``folder`` in numeric order, and the numbers missing up to the last one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceclsError(f"{folder}: folder not found")
    names = (e.name for e in os.scandir(folder) if e.is_file() and is_listed(e.name))
    numbered, missing = order_by_number(names, lambda name: str(folder / name), str(folder))
    return [(n, folder / name) for n, name in numbered], missing


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
                # convert() copies even an image that is RGB already: a tenth of the decode time.
                rgb = img if img.mode == "RGB" else img.convert("RGB")
                resized = rgb.size != (SIZE, SIZE)
                if resized:
                    rgb = rgb.resize((SIZE, SIZE), Image.BICUBIC)
                # Inside the with block: a closed image no longer holds its pixels.
                pixels = np.asarray(rgb, dtype=np.uint8)
    except FaceclsError:
        raise
    except UnidentifiedImageError:
        raise FaceclsError(f"{source}: not an image this pipeline can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FaceclsError(f"{source}: image is far too large ({one_line(exc)})") from None
    except Exception as exc:
        # Decoders meet damaged data with many exception types (OSError, SyntaxError,
        # struct.error, IndexError, ...); for a file from elsewhere they all mean the same.
        raise FaceclsError(f"{source}: corrupt or truncated image ({one_line(exc)})") from None
    return pixels, resized
