"""User-facing failures: one line naming the file or parameter and the problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable


class FaceclsError(Exception):
    """A problem with the user's input (archive, image, label, model file, params).

    The message is one line, starting with what is wrong where, for example
    ``data/faces.zip: faces/label_train.txt: line 7 is '2', expected 0 or 1``.
    """


def one_line(exc: BaseException | str) -> str:
    """A message on one line: library errors (zlib, PIL, YAML) sometimes span several."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if not text and isinstance(exc, BaseException):
        return type(exc).__name__
    return text


def fail_cleanly(main: Callable[[], object]) -> Callable[[], None]:
    """Run ``main``; report a FaceclsError as one line on stderr and exit 1.

    Stage scripts and the console command wrap their entry point with this so
    a user never sees a traceback for bad input.
    """

    def wrapped() -> None:
        try:
            main()
        except FaceclsError as exc:
            print(f"error: {one_line(exc)}", file=sys.stderr)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapped


def read_input_file(path, what: str) -> bytes:
    """The bytes of a file the user gave us, or a one-line error saying why not."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise FaceclsError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise FaceclsError(f"{path}: is a folder, expected the {what}") from None
    except OSError as exc:
        raise FaceclsError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_stage_json(path, rerun: str) -> Any:
    """A JSON file a stage wrote, or a one-line error: absent (``rerun`` says which command makes it)
    or not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run `{rerun}`)") from None
    except json.JSONDecodeError as exc:
        raise FaceclsError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
