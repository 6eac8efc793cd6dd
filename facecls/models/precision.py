"""Numeric precision of the model's work: the ``train.precision`` knob (a variant may set its own),
what ``auto`` resolves to for a model family, a phase and a device, and the autocast that applies it.

Only the model's layers run in bf16 (``torch.autocast``): the weights, the optimizer state, the
loss and sigmoid stay float32 (callers cast logits back with ``.float()``)."""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import torch

from facecls.models.ensemble import families
from facecls.params import check_choice, get

PRECISIONS = ("auto", "fp32", "bf16")
PHASES = ("train", "score")  # a training step (forward, backward, optimizer), and scoring (forward only)

# Where bf16 autocast beat fp32 on a CPU with bf16 instructions (2 threads, channels_last; images/s fp32 -> bf16).
# Intel Xeon with avx512_bf16: SimpleCNN training 486 -> 904 and scoring 732 -> 2,094; MobileNetV2 scoring
# 713 -> 1,881, but MobileNetV2 training 320 -> 197, so it trains in fp32. AMD EPYC with avx512_bf16, idle
# cores: VGG64 training 154-161 -> 256-299 and scoring 323 -> 660 (BENCHMARKS.md, speed study). Families not
# measured (resnet18) stay fp32. The benchmark measures both precisions beside each other.
BF16_FASTER_ON_CPU = frozenset({("simplecnn", "train"), ("simplecnn", "score"), ("mobilenetv2", "score"),
                                ("vgg64", "train"), ("vgg64", "score")})
# What /proc/cpuinfo calls bf16 arithmetic in hardware, where torch cannot say.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CAPABILITIES_WITHOUT_BF16 = frozenset({"DEFAULT", "NO AVX", "AVX2"})  # torch.backends.cpu.get_cpu_capability()


def precision_setting(params: dict, name: str, source: str = "params.yaml") -> str:
    """The precision knob of a scored name: the variant's own ``precision``, else ``train.precision``
    (the ensemble, not a variant, takes ``train.precision``), checked."""
    own = (params.get("variants") or {}).get(name)
    overridden = isinstance(own, dict) and own.get("precision") is not None  # empty inherits, as every key does
    key = f"variants.{name}.precision" if overridden else "train.precision"
    value = get(params, key, source)
    check_choice(value, PRECISIONS, source, key)
    return value


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def cpu_has_bf16() -> bool:
    """bf16 in the CPU's instructions, as torch's own kernels see it (its private probes, where
    this torch has them), else as /proc/cpuinfo lists it. Without it, bf16 is emulated: slower.
    Kernels held below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``, as when emulating a CPU without bf16)
    emulate it too, whatever the CPU has."""
    if torch.backends.cpu.get_cpu_capability() in CAPABILITIES_WITHOUT_BF16:
        return False
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if all(probes):
        return any(probe() for probe in probes)
    return bool(cpu_flags() & set(CPU_BF16_FLAGS))


def device_has_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and cpu_has_bf16()


def resolve_precision(precision: str, families: Iterable[str], phase: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for this work. ``auto``: bf16 where the device does bf16 in hardware and,
    on a CPU, only for the phase of families measured faster in it (every family, for an ensemble);
    on CUDA for every family (tensor cores). fp32 on MPS."""
    if precision != "auto":
        if precision == "bf16" and not device_has_bf16(device):
            _warn_emulated(device.type)
        return precision
    if not device_has_bf16(device):
        return "fp32"
    families = list(families)
    if device.type == "cpu" and not (families and all((f, phase) in BF16_FASTER_ON_CPU for f in families)):
        return "fp32"
    return "bf16"


def scoring_precision(precision: str, config: dict, device: torch.device) -> str:
    """``precision`` resolved for scoring a saved model: ``config`` is its file's, naming its
    architecture, or its members' (fold models, or an ensemble's variants)."""
    return resolve_precision(precision, families(config), "score", device)


@lru_cache(maxsize=None)  # once per device type and process, not once per call
def _warn_emulated(device_type: str) -> None:
    print(f"warning: precision bf16 on a {device_type} without bf16 in hardware: emulated, several times "
          "slower than fp32 (precision auto would pick fp32 here)", file=sys.stderr)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """The model's layers in bf16 under ``precision`` bf16; a no-op under fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
