"""Resume checkpoints: a killed training run starts again after its last finished epoch.

They live under .cache/resume/, outside every folder a stage depends on, and only
the very same run (config, labels, split, image array) may resume from one.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from facecls.atomic import atomic_path
from facecls.data.prepared import LabelledSet

# 2: RNG states are lists, one per training process.
RESUME_FORMAT = "facecls-resume-2"


def resume_path(variant: str) -> Path:
    return Path(".cache") / "resume" / f"{variant}.pt"


def run_fingerprint(config: dict, data: LabelledSet) -> str:
    """Identifies a training run, so a checkpoint is resumed only by the very same run."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(data.labels.tobytes())
    h.update(data.part.tobytes())
    h.update(str(data.images.shape).encode())
    return h.hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"format": RESUME_FORMAT, **state}, tmp)


def load_checkpoint(path: Path, fingerprint: str, processes: int, *, quiet: bool = False) -> dict | None:
    """The checkpoint of this very run, or None (absent, unreadable, or another run's)."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged checkpoint only costs the progress it held
        if not quiet:
            print(f"warning: {path}: unreadable resume checkpoint, starting over", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT or state.get("fingerprint") != fingerprint:
        return None
    if len(state["torch_rng"]) != processes:  # saved by a run with another process count
        return None
    return state
