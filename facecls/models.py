"""Model architectures, their starting weights, and optimizer parameter groups.

Every model is a ``FaceModel``: a ``backbone`` that turns an N x 3 x 64 x 64
batch into features and a ``head`` that turns features into one logit per
image, so training, freezing and learning-rate splits work the same way for
each architecture.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights, WeightsEnum

from facecls.errors import FaceclsError

MODES = ("full", "head")
WEIGHTS_FALLBACKS = ("random", "error")
UNAVAILABLE_IMAGENET = "random (imagenet unavailable)"

# Long enough for a working connection to start a download, short enough that
# an offline machine gives up quickly instead of hanging a pipeline stage.
DOWNLOAD_TIMEOUT_S = 10.0


class FaceModel(nn.Module):
    """``head(backbone(x))`` with the trailing logit dimension squeezed to (N,)."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.backbone_frozen = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images)).squeeze(-1)

    def freeze_backbone(self) -> None:
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        self.backbone_frozen = True
        self.backbone.eval()

    def train(self, mode: bool = True) -> FaceModel:
        super().train(mode)
        if self.backbone_frozen:
            # In train mode BatchNorm keeps updating its running statistics,
            # which would silently change a "frozen" feature extractor.
            self.backbone.eval()
        return self


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
    )


class SimpleCNN(FaceModel):
    """The study's baseline: 3 conv blocks and a 2-layer MLP, 1,142,785 parameters."""

    def __init__(self, dropout: float = 0.5) -> None:
        backbone = nn.Sequential(
            _conv_block(3, 32),
            _conv_block(32, 64),
            _conv_block(64, 128),
            nn.Flatten(),
        )
        head = nn.Sequential(
            nn.Linear(128 * 8 * 8, 128),
            nn.BatchNorm1d(128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 1),
        )
        super().__init__(backbone, head)


def _mobilenetv2(dropout: float, stem_stride: int) -> FaceModel:
    net = torchvision.models.mobilenet_v2(weights=None)
    # The torchvision forward still pools and flattens before its classifier.
    net.classifier = nn.Identity()
    return FaceModel(net, nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, 1)))


def _resnet18(dropout: float, stem_stride: int) -> FaceModel:
    net = torchvision.models.resnet18(weights=None)
    # The ImageNet stem (7x7 stride 2, then max-pool) would shrink a 64x64
    # photo to 16x16 before the first residual stage. This 3x3 conv never
    # gets ImageNet weights (their shape differs): it always starts random,
    # with the same initialisation torchvision gives its own convolutions.
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return FaceModel(net, nn.Sequential(nn.Dropout(dropout), nn.Linear(512, 1)))


@dataclass(frozen=True)
class _Architecture:
    build: Callable[[float, int], FaceModel]
    default_dropout: float
    imagenet: WeightsEnum | None
    # Prefixes of torchvision keys for layers we replaced; their ImageNet
    # tensors are skipped when absent from our model or shaped differently.
    replaced_prefixes: tuple[str, ...]


ARCHITECTURES: dict[str, _Architecture] = {
    "simplecnn": _Architecture(lambda dropout, _: SimpleCNN(dropout), 0.5, None, ()),
    "mobilenetv2": _Architecture(
        _mobilenetv2, 0.2, MobileNet_V2_Weights.IMAGENET1K_V1, ("classifier.",)
    ),
    "resnet18": _Architecture(
        _resnet18, 0.0, ResNet18_Weights.IMAGENET1K_V1, ("fc.", "conv1.")
    ),
}


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise FaceclsError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


def build_model(
    arch: str,
    *,
    mode: str = "full",
    weights: str | os.PathLike[str] = "random",
    weights_fallback: str = "random",
    dropout: float | None = None,
    stem_stride: int = 1,
) -> tuple[FaceModel, str]:
    """Build ``arch`` with its starting weights; return (model, weights_used).

    ``weights_used`` says where the weights really came from, so a run that
    fell back to random init can never be reported as transfer learning.
    """
    _check_choice("arch", arch, tuple(ARCHITECTURES))
    _check_choice("mode", mode, MODES)
    _check_choice("weights_fallback", weights_fallback, WEIGHTS_FALLBACKS)
    architecture = ARCHITECTURES[arch]
    if dropout is None:
        dropout = architecture.default_dropout
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise FaceclsError(f"dropout: {dropout!r} is not a number in [0, 1)")
    if isinstance(stem_stride, bool) or not isinstance(stem_stride, int) or stem_stride < 1:
        raise FaceclsError(f"stem_stride: {stem_stride!r} is not a positive integer")
    if stem_stride != 1 and arch != "resnet18":
        raise FaceclsError(f"stem_stride: only resnet18 has a configurable stem, not {arch}")

    model = architecture.build(float(dropout), stem_stride)
    if weights == "random":
        weights_used = "random"
    elif weights == "imagenet":
        weights_used = _load_imagenet(model, arch, architecture, weights_fallback)
    else:
        path = Path(weights)
        _load_weights(model, arch, architecture, read_state_dict(path), str(path))
        weights_used = f"file:{path}"
    if mode == "head":
        model.freeze_backbone()
    return model, weights_used


def imagenet_cache_file(weights: WeightsEnum) -> Path:
    """Where torch hub keeps (and we look for) the downloaded ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def _load_imagenet(
    model: FaceModel, arch: str, architecture: _Architecture, fallback: str
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


def load_torch_file(path: Path) -> Any:
    """``torch.load`` a user-supplied file without ever running code from it."""
    if not path.exists():
        raise FaceclsError(f"{path}: file not found")
    if not path.is_file():
        raise FaceclsError(f"{path}: not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # The safe unpickler names the class or function the file asked for.
        if "GLOBAL" in str(exc):
            raise FaceclsError(
                f"{path}: refused: file contains pickled code, not plain weights"
            ) from None
        raise FaceclsError(f"{path}: not a readable torch file ({_reason(exc)})") from None
    except Exception as exc:
        raise FaceclsError(f"{path}: not a readable torch file ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    """The informative line of a torch.load error (its first is often boilerplate)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("Unsupported")), None)
    return detail or (f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)


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


def state_dict_mismatch(
    expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]
) -> str | None:
    """How ``given`` fails to fit ``expected`` (one phrase), or None if it fits."""
    # BatchNorm fills in a missing batch counter itself; it is not a weight.
    missing = [k for k in expected if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in expected]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys such as {missing[0]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys such as {unexpected[0]}")
    for key, tensor in given.items():
        if key in expected and tensor.shape != expected[key].shape:
            problems.append(
                f"{key} has shape {tuple(tensor.shape)}, expected {tuple(expected[key].shape)}"
            )
            break
    return ", ".join(problems) or None


def _load_weights(
    model: FaceModel,
    arch: str,
    architecture: _Architecture,
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


def parameter_groups(model: FaceModel, lr: float, lr_factor: float) -> list[dict[str, Any]]:
    """Optimizer groups: backbone at ``lr * lr_factor``, head at ``lr``.

    Frozen parameters are left out, so head mode optimizes only the head.
    """
    if not lr > 0:
        raise FaceclsError(f"lr: {lr!r} is not a positive number")
    if not lr_factor >= 0:
        raise FaceclsError(f"lr_factor: {lr_factor!r} is not a number >= 0")
    groups = []
    for name, module, group_lr in (
        ("backbone", model.backbone, lr * lr_factor),
        ("head", model.head, lr),
    ):
        trainable = [p for p in module.parameters() if p.requires_grad]
        if trainable:
            groups.append({"name": name, "params": trainable, "lr": group_lr})
    return groups


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
