"""Read params.yaml, and the checks every section's reader uses.

Each stage checks the sections it reads before any work, so a wrong value
stops the run at once with the key named, not an hour later inside training.
The allowed values of a knob are defined where the knob is used (the
architectures in facecls.models, the optimizers in facecls.training, ...) and
the checks read them from there.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from facecls.errors import FaceclsError, one_line, read_input_file


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    raw = read_input_file(path, "params file")
    try:
        params = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FaceclsError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise FaceclsError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(params, dict):
        raise FaceclsError(f"{path}: expected a mapping of sections")
    return params


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML's message spans several lines and starts with the context
    # ("while parsing a block mapping"); the problem and its line say more.
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return one_line(exc)


def get(params: dict, dotted: str, source: str = "params.yaml") -> Any:
    """The value at ``dotted`` (``"split.seed"``), or a one-line error naming the missing key."""
    node: Any = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise FaceclsError(f"{source}: missing key {dotted}")
        node = node[part]
    return node


def check(ok: bool, source: str, key: str, expected: str, value: Any) -> None:
    if not ok:
        raise FaceclsError(f"{source}: {key} must be {expected}, got {value!r}")


def check_choice(value: Any, allowed: tuple[str, ...], source: str, key: str) -> None:
    check(value in allowed, source, key, f"one of {allowed}", value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    # YAML reads .nan and .inf as floats; neither is a usable setting.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def check_known_keys(section: dict, known, source: str, prefix: str) -> None:
    """A typo such as ``-S train.epoch=30`` must not pass silently."""
    for key in section:
        if key not in known:
            raise FaceclsError(f"{source}: unknown key {prefix}.{key} (known: {', '.join(sorted(known))})")
