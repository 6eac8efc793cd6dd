"""Image files: the number each name carries, and decoding any common format to 64x64 RGB."""

from __future__ import annotations

import io
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from facecls.data.images import decode_image, list_numbered_images
from facecls.errors import FaceclsError
from tests.archives import image_bytes


def touch(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def numbers_and_names(folder: Path) -> list[tuple[int, str]]:
    numbered, _ = list_numbered_images(folder)
    return [(n, p.name) for n, p in numbered]


def test_names_are_ordered_as_numbers_not_text(tmp_path):
    folder = touch(tmp_path / "val_img", "1.jpg", "2.jpg", "10.jpg", "9.jpg")
    assert numbers_and_names(folder) == [(1, "1.jpg"), (2, "2.jpg"), (9, "9.jpg"), (10, "10.jpg")]


def test_padded_and_unpadded_names_mix(tmp_path):
    folder = touch(tmp_path / "img", "000009.jpg", "10.jpg", "0011.png", "12.JPG")
    assert [n for n, _ in numbers_and_names(folder)] == [9, 10, 11, 12]


def test_the_same_number_twice_is_refused_naming_both_files(tmp_path):
    folder = touch(tmp_path / "train_img", "1.jpg", "001.jpg", "2.jpg")
    with pytest.raises(FaceclsError) as error:
        list_numbered_images(folder)
    # Which of the two is met first depends on the file system's listing order.
    assert str(error.value) in (f"{folder / '1.jpg'}: number 1 is used twice (also 001.jpg)",
                                f"{folder / '001.jpg'}: number 1 is used twice (also 1.jpg)")


@pytest.mark.parametrize("name", ["face.jpg", "1a.jpg", "1.5.jpg", "-1.jpg", " 1.jpg", "\u0661.jpg", "\uff11.jpg"])
def test_a_name_that_is_not_a_number_is_refused(tmp_path, name):
    folder = touch(tmp_path / "train_img", "1.jpg", name)
    with pytest.raises(FaceclsError) as error:
        list_numbered_images(folder)
    assert str(error.value) == f"{folder / name}: file name is not a number, so it cannot be ordered or labelled"


@pytest.mark.parametrize("name", ["notes.txt", "2.jpg.bak", "labels"])
def test_a_non_image_file_in_an_image_folder_is_refused(tmp_path, name):
    folder = touch(tmp_path / "val_img", "1.jpg", name)
    with pytest.raises(FaceclsError) as error:
        list_numbered_images(folder)
    assert str(error.value) == f"{folder / name}: not an image file (expected .jpg or .png)"


def test_hidden_files_and_subfolders_are_not_images(tmp_path):
    folder = touch(tmp_path / "val_img", "1.jpg", "2.jpg", ".DS_Store", "._1.jpg")
    (folder / "thumbs").mkdir()
    assert [n for n, _ in numbers_and_names(folder)] == [1, 2]


def test_missing_and_empty_folders_are_named(tmp_path):
    with pytest.raises(FaceclsError, match=f"^{tmp_path / 'val_img'}: folder not found$"):
        list_numbered_images(tmp_path / "val_img")
    empty = touch(tmp_path / "train_img", ".DS_Store")
    with pytest.raises(FaceclsError, match=f"^{empty}: holds no images$"):
        list_numbered_images(empty)


def test_missing_numbers_are_counted_from_one(tmp_path):
    folder = touch(tmp_path / "val_img", "3.jpg", "4.jpg", "7.jpg")
    _, gaps = list_numbered_images(folder)
    assert list(gaps) == [1, 2, 5, 6] and len(gaps) == 4
    folder = touch(tmp_path / "from_zero", "0.jpg", "1.jpg")
    assert len(list_numbered_images(folder)[1]) == 0


def test_one_huge_number_does_not_exhaust_memory(tmp_path):
    # A stray camera-style name once meant building a set of 10**14 missing numbers.
    folder = touch(tmp_path / "val_img", "1.jpg", "2.jpg", "20230101123456.jpg")
    start = time.perf_counter()
    numbered, gaps = list_numbered_images(folder)
    assert time.perf_counter() - start < 1
    assert [n for n, _ in numbered] == [1, 2, 20230101123456]
    assert len(gaps) == 20230101123456 - 3
    assert gaps[:3] == [3, 4, 5] and gaps[-1] == 20230101123455


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 3000), min_size=1, max_size=25), st.data())
def test_any_padding_comes_back_in_numeric_order_with_the_gaps(numbers, data):
    names = {}
    for n in numbers:
        width = data.draw(st.integers(0, 7), label=f"padding of {n}")
        suffix = data.draw(st.sampled_from([".jpg", ".JPG", ".jpeg", ".png"]), label=f"suffix of {n}")
        names[n] = f"{n:0{width}d}{suffix}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = touch(Path(tmp), *names.values())
        numbered, gaps = list_numbered_images(folder)
    assert [(n, p.name) for n, p in numbered] == [(n, names[n]) for n in sorted(numbers)]
    start = min(min(numbers), 1)
    assert list(gaps) == [n for n in range(start, max(numbers) + 1) if n not in numbers]


def noisy_face(seed: int = 0, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    # Noise keeps the JPEG large enough that truncating it cuts into the pixel data.
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def test_png_decodes_exactly(tmp_path):
    face = noisy_face()
    array, resized = decode_image(image_bytes(face, fmt="PNG"), "1.png")
    assert array.dtype == np.uint8 and array.shape == (64, 64, 3)
    assert np.array_equal(array, face) and not resized


@pytest.mark.parametrize("size", [(32, 32), (128, 96), (65, 64)])
def test_other_sizes_are_resized_and_reported(size):
    array, resized = decode_image(image_bytes(noisy_face(1, size)), "big.jpg")
    assert array.shape == (64, 64, 3) and resized


@pytest.mark.parametrize(("mode", "fmt", "colour", "expected"), [
    ("L", "PNG", 100, (100, 100, 100)),
    ("RGBA", "PNG", (200, 10, 10, 0), (200, 10, 10)),
    ("P", "PNG", (255, 0, 0), (255, 0, 0)),
    ("CMYK", "JPEG", (0, 255, 255, 0), (255, 0, 0)),
    ("1", "PNG", 1, (255, 255, 255)),
])
def test_other_colour_modes_become_rgb(mode, fmt, colour, expected):
    if mode == "P":
        img = Image.new("RGB", (64, 64), colour).convert("P")
    else:
        img = Image.new(mode, (64, 64), colour)
    out = io.BytesIO()
    img.save(out, format=fmt)
    array, _ = decode_image(out.getvalue(), f"x.{fmt.lower()}")
    assert array.shape == (64, 64, 3)
    # JPEG's CMYK round trip is lossy by a few levels.
    assert np.abs(array.reshape(-1, 3).astype(int) - expected).max() <= 3


def test_empty_file_is_named():
    with pytest.raises(FaceclsError) as error:
        decode_image(b"", "train_img/7.jpg")
    assert str(error.value) == "train_img/7.jpg: empty file (0 bytes)"


@pytest.mark.parametrize("data", [b"not an image at all", b"\xff\xd8\xff" + bytes(range(256)) * 4])
def test_non_image_bytes_are_named(data):
    with pytest.raises(FaceclsError) as error:
        decode_image(data, "train_img/7.jpg")
    assert str(error.value) == "train_img/7.jpg: not an image this pipeline can read"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_is_named(fmt):
    whole = image_bytes(noisy_face(), fmt=fmt)
    with pytest.raises(FaceclsError) as error:
        decode_image(whole[: len(whole) // 2], "val_img/12.jpg")
    message = str(error.value)
    assert message.startswith("val_img/12.jpg: corrupt or truncated image (")
    assert "\n" not in message


def test_corrupt_jpeg_body_is_named():
    whole = bytearray(image_bytes(noisy_face()))
    # Destroy the start-of-scan header and what follows: the decoder cannot go on.
    sos = whole.index(b"\xff\xda")
    whole[sos + 2: sos + 40] = b"\xff" * 38
    with pytest.raises(FaceclsError, match=r"^val_img/3\.jpg: corrupt or truncated image \(.+\)$"):
        decode_image(bytes(whole), "val_img/3.jpg")


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` but holds no pixel data (a few dozen bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [5000, 30000])
def test_an_image_declaring_a_huge_size_is_refused_before_decoding(side):
    # 5000x5000 passes Pillow's own bomb check (89 Mpx) but no face photo is that big.
    with pytest.raises(FaceclsError) as error:
        decode_image(png_header(side, side), "val_img/1.png")
    assert str(error.value).startswith("val_img/1.png: image ")
    assert "is far too large" in str(error.value)
