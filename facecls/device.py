"""Where tensors live: device choice, CPU threads, and the host allocator tensor work wants."""

from __future__ import annotations

import ctypes
import os

import torch

from facecls.errors import FaceclsError
from facecls.params import check, get

DEVICES = ("auto", "cpu", "cuda", "mps")  # train.device; auto: cuda, then mps, then cpu


def pick_device(name: str = "auto") -> torch.device:
    """The device ``name`` asks for (auto: cuda, then mps, then cpu); every stage that runs a model
    comes through here, so the host allocator is set up here too (``reuse_freed_memory``)."""
    reuse_freed_memory()
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


# glibc's malloc hands blocks above its mmap threshold (128 kB, growing to 32 MB) back to the OS as
# soon as they are freed, so every training step and every scoring batch maps its activations
# afresh and the kernel zeroes them page by page: here about 10,000 page faults a SimpleCNN step,
# and 13 % (bare step) to 30 % (training stage) of the CPU time spent in the kernel. Keeping up to
# 1 GB of freed memory for reuse ends that (2 cores): SimpleCNN training 202 -> 243 img/s in the
# stage, scoring 375 -> 964 img/s, the stage's system time 35 s -> 4 s. Scoring batches stay small
# on CPU (facecls.models.inference.scoring_batch) so that what is kept stays small too.
_KEEP_FREED_BYTES = 1 << 30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
_reusing: bool | None = None


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (once per process). False where the C
    library has no ``mallopt`` (macOS, say): nothing changes there."""
    global _reusing
    if _reusing is None:
        try:
            mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
        except (OSError, AttributeError):
            _reusing = False
        else:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _reusing = bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_FREED_BYTES)
                            and mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES))
    return _reusing
