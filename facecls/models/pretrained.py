"""Starting weights, as an input DVC tracks: the ``weights`` stage resolves what each variant
asks for (``random``, ``imagenet``, or a state_dict file) to a file in ``data/weights/`` and
records it, with its SHA-256, in ``models/pretrained/<variant>.json``; training starts from
that record. So a run that fell back to random initialisation is rerun when the file appears,
and runs that started from different weights never share a lock entry or a run-cache hit.

The pipeline reads no untracked weights: ImageNet files reach ``data/weights/`` through
``facecls weights fetch``, which copies them from the torch hub cache or downloads them.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from facecls.atomic import atomic_path
from facecls.errors import FaceclsError, read_stage_json
from facecls.models.architectures import ARCHITECTURES, Architecture, FaceModel, build_architecture, check_choice
from facecls.models.files import load_torch_file, state_dict_mismatch

WEIGHTS_DIR = Path("data/weights")  # the only place the pipeline takes starting weights from
START_DIR = Path("models/pretrained")  # the weights stage's records, one per variant
WEIGHTS_FALLBACKS = ("random", "error")  # what to do when ImageNet weights are unavailable
UNAVAILABLE_IMAGENET = "random (imagenet unavailable)"
RANDOM_START = {"weights": "random", "file": None, "sha256": None}

# Long enough for a working connection to start a download, short enough that
# an offline machine gives up quickly instead of hanging.
DOWNLOAD_TIMEOUT_S = 10.0


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def imagenet_file_name(arch: str) -> str:
    """torchvision's file name for ``arch``'s ImageNet weights (mobilenet_v2-b0353104.pth, ...)."""
    weights = ARCHITECTURES[arch].imagenet
    if weights is None:
        raise FaceclsError(f"weights: no imagenet weights exist for {arch}; use random or a file")
    return Path(urlparse(weights.url).path).name


def resolve_start(arch: str, weights: str, fallback: str, weights_dir: Path = WEIGHTS_DIR) -> dict:
    """The record of what a variant starts from: ``weights`` as used (what reports show),
    ``file`` and its ``sha256`` (None for random initialisation)."""
    check_choice("arch", arch, tuple(ARCHITECTURES))
    check_choice("weights_fallback", fallback, WEIGHTS_FALLBACKS)
    if weights == "random":
        return dict(RANDOM_START)
    if weights == "imagenet":
        path = weights_dir / imagenet_file_name(arch)
        if not path.is_file():
            problem = (f"imagenet weights for {arch} unavailable: {path} is absent (run `facecls weights fetch`, "
                       f"which copies it from the torch hub cache or downloads it)")
            if fallback == "error":
                raise FaceclsError(f"weights: {problem}")
            print(f"WARNING: {problem}; training from RANDOM init instead", file=sys.stderr)
            return {**RANDOM_START, "weights": UNAVAILABLE_IMAGENET}
        return {"weights": "imagenet", "file": str(path), "sha256": sha256(path)}
    path = Path(weights)
    if path.parent == Path("."):
        path = weights_dir / path  # a bare name: a file in data/weights/
    if weights_dir.resolve() not in path.resolve().parents:
        raise FaceclsError(f"weights: {weights} is not in {weights_dir}/: copy it there, where DVC tracks it")
    if not path.is_file():
        raise FaceclsError(f"{path}: weights file not found")
    return {"weights": f"file:{path}", "file": str(path), "sha256": sha256(path)}


def build_model(arch: str, *, mode: str = "full", start: dict = RANDOM_START, **shape) -> tuple[FaceModel, str]:
    """``arch`` (with its ``shape`` options) and the starting weights ``start`` records; return
    (model, weights_used).

    ``weights_used`` says where the weights really came from, so a run that
    fell back to random init can never be reported as transfer learning.
    """
    model = build_architecture(arch, mode=mode, **shape)
    if start["file"] is not None:
        path = Path(start["file"])
        if not path.is_file() or sha256(path) != start["sha256"]:
            raise FaceclsError(f"{path}: not the file the weights stage recorded (it changed since): "
                               "run `dvc repro` to resolve the weights again")
        _load_weights(model, arch, ARCHITECTURES[arch], read_state_dict(path), str(path))
    return model, start["weights"]


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def imagenet_cache_file(weights: WeightsEnum) -> Path:
    """Where torch hub keeps a downloaded ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def fetch_imagenet(arch: str, weights_dir: Path = WEIGHTS_DIR) -> tuple[Path, str]:
    """Put ``arch``'s ImageNet file into ``weights_dir``: copied from the torch hub cache, or
    downloaded there first where the network allows. Returns (the file, where it came from)."""
    target = weights_dir / imagenet_file_name(arch)
    cached = imagenet_cache_file(ARCHITECTURES[arch].imagenet)
    source = f"the torch hub cache ({cached})"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                torch.hub.download_url_to_file(ARCHITECTURES[arch].imagenet.url, str(cached), progress=False)
        except Exception as exc:
            raise FaceclsError(f"{cached}: not in the torch hub cache and the download failed ({type(exc).__name__}); "
                               f"copy the file there or into {weights_dir}/ from a machine that has it") from None
        source = f"a download ({ARCHITECTURES[arch].imagenet.url})"
    with atomic_path(target) as tmp:  # data/weights/ is a DVC dependency: never half a file there
        shutil.copyfile(cached, tmp)
    return target, source


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state_dict from a weights file, or from a checkpoint that wraps one."""
    content = load_torch_file(path)
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        content = content["state_dict"]
    if (
        not isinstance(content, dict)
        or not content
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in content.items())
    ):
        raise FaceclsError(f"{path}: not a state_dict (expected a dict of named tensors)")
    return content


def _load_weights(
    model: FaceModel,
    arch: str,
    architecture: Architecture,
    state: dict[str, torch.Tensor],
    source: str,
) -> None:
    """Load a whole-model state_dict, or a torchvision one into the backbone."""
    if all(key.startswith(("backbone.", "head.")) for key in state):
        mismatch = state_dict_mismatch(model.state_dict(), state)
        if mismatch:
            raise FaceclsError(f"{source}: weights do not fit {arch}: {mismatch}")
        model.load_state_dict(state)
        return

    # A torchvision model's state_dict: its keys are our backbone's keys,
    # plus layers we replaced (classifier, 7x7 stem) that cannot be used.
    expected = model.backbone.state_dict()
    usable, skipped = {}, []
    for key, tensor in state.items():
        replaced = key.startswith(architecture.replaced_prefixes)
        if replaced and (key not in expected or tensor.shape != expected[key].shape):
            skipped.append(key)
        else:
            usable[key] = tensor
    # Replaced layers keep their fresh initialisation instead of counting as missing.
    expected_from_file = {k: v for k, v in expected.items() if k not in skipped}
    mismatch = state_dict_mismatch(expected_from_file, usable)
    if mismatch:
        raise FaceclsError(f"{source}: weights do not fit the {arch} backbone: {mismatch}")
    model.backbone.load_state_dict(usable, strict=False)
    if skipped:
        print(
            f"weights: {source}: loaded {len(usable)} tensors, skipped {len(skipped)} "
            f"of replaced layers ({', '.join(skipped)})",
            file=sys.stderr,
        )




def start_record(variant: str, start_dir: Path = START_DIR) -> dict:
    """What the weights stage recorded for ``variant``."""
    path = start_dir / f"{variant}.json"
    record = read_stage_json(path, "dvc repro weights")
    if not isinstance(record, dict) or not {"weights", "file", "sha256"} <= record.keys():
        raise FaceclsError(f"{path}: not a starting-weights record (weights, file, sha256)")
    return record
