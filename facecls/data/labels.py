"""The label file: one 0 or 1 per line, line N labels image N."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from facecls.errors import FaceclsError, read_input_file

# Line ends as an editor counts them (\r\n, \n, or an old Mac's \r), so the line
# number in a message is the one the user sees; str.splitlines would also split
# on form feeds and Unicode separators and shift those numbers.
_LINE_END = re.compile(r"\r\n|\r|\n")
# Spaces and tabs around the value are editing noise, anything else is not a label.
_PADDING = " \t"


def parse_labels(text: str, source: str) -> np.ndarray:
    """Labels as uint8; CRLF, spaces around a value and a missing final newline are fine."""
    lines = _LINE_END.split(text)
    # Blank lines at the very end label nothing; one in the middle would shift every label after it.
    while lines and lines[-1].strip(_PADDING) == "":
        lines.pop()
    if not lines:
        raise FaceclsError(f"{source}: empty label file")
    labels = np.empty(len(lines), dtype=np.uint8)
    for number, line in enumerate(lines, start=1):
        value = line.strip(_PADDING)
        if value not in ("0", "1"):
            shown = value if len(value) <= 20 else value[:20] + "..."
            raise FaceclsError(f"{source}: line {number} is {shown!r}, expected 0 or 1")
        labels[number - 1] = value == "1"
    return labels


def decode_labels(raw: bytes, source: str) -> np.ndarray:
    """Labels from the bytes of a label file; a UTF-8 byte order mark is skipped."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FaceclsError(f"{source}: not a UTF-8 text file (byte {exc.start})") from None
    return parse_labels(text, source)


def read_labels(path: str | Path) -> np.ndarray:
    path = Path(path)
    return decode_labels(read_input_file(path, "label file"), str(path))


def format_labels(labels) -> str:
    return "".join(f"{int(v)}\n" for v in labels)
