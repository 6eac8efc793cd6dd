"""The label file: one 0 or 1 per line, line N labels image N."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facecls.errors import FaceclsError


def parse_labels(text: str, source: str) -> np.ndarray:
    """Labels as uint8; CRLF, trailing spaces and a missing final newline are fine."""
    lines = text.splitlines()
    while lines and lines[-1].strip() == "":
        lines.pop()
    if not lines:
        raise FaceclsError(f"{source}: empty label file")
    labels = np.empty(len(lines), dtype=np.uint8)
    for number, line in enumerate(lines, start=1):
        value = line.strip()
        if value not in ("0", "1"):
            shown = value if len(value) <= 20 else value[:20] + "..."
            raise FaceclsError(f"{source}: line {number} is {shown!r}, expected 0 or 1")
        labels[number - 1] = value == "1"
    return labels


def read_labels(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FaceclsError(f"{path}: label file not found") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FaceclsError(f"{path}: not a text file") from None
    return parse_labels(text, str(path))


def format_labels(labels) -> str:
    return "".join(f"{int(v)}\n" for v in labels)
