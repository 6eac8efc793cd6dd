"""Starting weights: ImageNet from the torch hub cache (or a download where the network
allows), a state_dict file the user names, or random initialisation, and which of them
a model really got.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import torch
from torchvision.models import WeightsEnum

from facecls.errors import FaceclsError
from facecls.models.architectures import ARCHITECTURES, Architecture, FaceModel, build_architecture, check_choice
from facecls.models.files import load_torch_file, state_dict_mismatch

WEIGHTS_FALLBACKS = ("random", "error")  # what to do when ImageNet weights are unavailable
UNAVAILABLE_IMAGENET = "random (imagenet unavailable)"

# Long enough for a working connection to start a download, short enough that
# an offline machine gives up quickly instead of hanging a pipeline stage.
DOWNLOAD_TIMEOUT_S = 10.0


def build_model(
    arch: str,
    *,
    mode: str = "full",
    weights: str | os.PathLike[str] = "random",
    weights_fallback: str = "random",
    stem_stride: int = 1,
) -> tuple[FaceModel, str]:
    """Build ``arch`` with its starting weights; return (model, weights_used).

    ``weights_used`` says where the weights really came from, so a run that
    fell back to random init can never be reported as transfer learning.
    """
    check_choice("weights_fallback", weights_fallback, WEIGHTS_FALLBACKS)
    model = build_architecture(arch, mode=mode, stem_stride=stem_stride)
    architecture = ARCHITECTURES[arch]
    if weights == "random":
        return model, "random"
    if weights == "imagenet":
        return model, _load_imagenet(model, arch, architecture, weights_fallback)
    path = Path(weights)
    _load_weights(model, arch, architecture, read_state_dict(path), str(path))
    return model, f"file:{path}"


def imagenet_cache_file(weights: WeightsEnum) -> Path:
    """Where torch hub keeps (and we look for) the downloaded ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _load_imagenet(
    model: FaceModel, arch: str, architecture: Architecture, fallback: str
) -> str:
    if architecture.imagenet is None:
        raise FaceclsError(f"weights: no imagenet weights exist for {arch}; use random or a file")
    cache_file = imagenet_cache_file(architecture.imagenet)
    if cache_file.is_file():
        state = read_state_dict(cache_file)
        source = str(cache_file)
    else:
        state = _download(architecture.imagenet)
        source = architecture.imagenet.url
    if state is None:
        problem = (
            f"imagenet weights for {arch} unavailable (not in cache, download failed); "
            f"provide the file {cache_file} (from {architecture.imagenet.url})"
        )
        if fallback == "error":
            raise FaceclsError(f"weights: {problem}")
        warnings.warn(f"{problem}; training from random init instead", stacklevel=3)
        print(f"WARNING: {problem}; training from RANDOM init instead", file=sys.stderr)
        return UNAVAILABLE_IMAGENET
    _load_weights(model, arch, architecture, state, source)
    return "imagenet"


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _download(weights: WeightsEnum) -> dict[str, Any] | None:
    """The state_dict from the internet, or None when that fails for any reason."""
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return weights.get_state_dict(progress=False)
    except Exception:
        return None


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


