"""Where tensors live: device choice and CPU threads."""

from __future__ import annotations

import os

import torch

from facecls.errors import FaceclsError
from facecls.params import check, get

DEVICES = ("auto", "cpu", "cuda", "mps")  # train.device; auto: cuda, then mps, then cpu


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FaceclsError("train.device: cuda requested but no CUDA device is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise FaceclsError("train.device: mps requested but MPS is not available")
    if name not in DEVICES and not name.startswith("cuda:"):
        raise FaceclsError(f"train.device: unknown device {name!r} ({', '.join(DEVICES)})")
    return torch.device(name)


def is_device_name(name) -> bool:
    return name in DEVICES or (isinstance(name, str) and name.startswith("cuda:"))


def device_setting(params: dict, source: str = "params.yaml") -> str:
    """``train.device``, checked: where evaluation and prediction run too."""
    name = get(params, "train.device", source)
    check(is_device_name(name), source, "train.device", f"one of {DEVICES} or cuda:N", name)
    return name


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_cpu_threads(threads: int = 0) -> int:
    """Use every core we may run on (0) or the given number; returns the count."""
    n = threads or usable_cores()
    torch.set_num_threads(n)
    return n
