"""Model architectures: every model is a ``FaceModel``, a ``backbone`` that turns an
N x 3 x 64 x 64 batch into features and a ``head`` that turns features into one logit per
image, so training, freezing and learning-rate splits work the same way for each.

Architectures are built here with random weights; ``facecls.models.pretrained`` gives
them their starting weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torchvision
from torch import nn
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights, WeightsEnum

from facecls.errors import FaceclsError

MODES = ("full", "head")  # train everything, or the head on a frozen backbone


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

    def __init__(self) -> None:
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
            nn.Dropout(0.5),
            nn.Linear(128, 1),
        )
        super().__init__(backbone, head)


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    # No conv bias: the BatchNorm right after it has its own shift.
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class VGG64(FaceModel):
    """A VGG-style net built for 64x64 faces: ``blocks`` blocks of two 3x3 convolutions (BatchNorm,
    ReLU) at ``width``, 2 x ``width``, ... channels, each followed by a 2x2 max-pool; one more
    convolution to twice the last width; global average pooling; dropout 0.3; one logit.

    ``stem: single`` gives the first block one convolution instead of two: at full resolution the
    second one (width -> width at 64x64) costs a quarter of the default net's multiply-adds, for
    little it sees that the next block does not (the grid decides: README, Deciding on accuracy).
    """

    def __init__(self, width: int = 32, stem: str = "pair", blocks: int = 3) -> None:
        layers: list[nn.Module] = []
        channels = 3
        for block in range(blocks):
            out = width * 2 ** block
            layers += _conv_bn_relu(channels, out)
            if block > 0 or stem == "pair":
                layers += _conv_bn_relu(out, out)
            layers.append(nn.MaxPool2d(2, 2))
            channels = out
        layers += _conv_bn_relu(channels, 2 * channels)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        super().__init__(nn.Sequential(*layers), nn.Sequential(nn.Dropout(0.3), nn.Linear(2 * channels, 1)))


def _mobilenetv2() -> FaceModel:
    net = torchvision.models.mobilenet_v2(weights=None)
    # The torchvision forward still pools and flattens before its classifier.
    net.classifier = nn.Identity()
    # torchvision's own classifier dropout for MobileNetV2.
    return FaceModel(net, nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1)))


def _resnet18(stem_stride: int = 1) -> FaceModel:
    net = torchvision.models.resnet18(weights=None)
    # The ImageNet stem (7x7 stride 2, then max-pool) would shrink a 64x64
    # photo to 16x16 before the first residual stage. This 3x3 conv never
    # gets ImageNet weights (their shape differs): it always starts random,
    # with the same initialisation torchvision gives its own convolutions.
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=stem_stride, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return FaceModel(net, nn.Linear(512, 1))


@dataclass(frozen=True)
class Architecture:
    build: Callable[..., FaceModel]  # its shape options (keywords) -> a model with random weights
    imagenet: WeightsEnum | None
    # Prefixes of torchvision keys for layers we replaced; their ImageNet
    # tensors are skipped when absent from our model or shaped differently.
    replaced_prefixes: tuple[str, ...]
    # The shape options it takes, each with the values allowed: (name, check, what the check wants).
    options: tuple[tuple[str, Callable[[Any], bool], str], ...] = ()
    # Whether it takes faces of any size (global pooling before the head), not 64x64 only.
    any_size: bool = True


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


ARCHITECTURES: dict[str, Architecture] = {
    "simplecnn": Architecture(SimpleCNN, None, (), any_size=False),  # its head is Linear(128 * 8 * 8, ...)
    "vgg64": Architecture(VGG64, None, (), (
        ("width", _positive_int, "a positive integer"),
        ("stem", lambda v: v in ("pair", "single"), "pair or single"),
        ("blocks", lambda v: _positive_int(v) and v <= 4, "an integer from 1 to 4"))),
    "mobilenetv2": Architecture(_mobilenetv2, MobileNet_V2_Weights.IMAGENET1K_V1, ("classifier.",)),
    "resnet18": Architecture(_resnet18, ResNet18_Weights.IMAGENET1K_V1, ("fc.", "conv1."),
                             (("stem_stride", _positive_int, "a positive integer"),)),
}
# Every shape option a variant may set (empty: the architecture's own default). Saved with the model,
# so that the file rebuilds the same shape.
SHAPE_KEYS = ("stem_stride", "width", "stem", "blocks")


def shape_options(config: dict[str, Any]) -> dict[str, Any]:
    """The shape options ``config`` sets (a variant's config, or a model file's)."""
    return {key: config[key] for key in SHAPE_KEYS if config.get(key) is not None}


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise FaceclsError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


def checked_shape(arch: str, shape: dict[str, Any]) -> dict[str, Any]:
    """The ``shape`` options (``SHAPE_KEYS``; None: the default) that ``arch`` is built with, each
    checked: an option ``arch`` does not take, or a value it does not allow, is an error."""
    check_choice("arch", arch, tuple(ARCHITECTURES))
    unknown = [key for key in shape if key not in SHAPE_KEYS]
    if unknown:
        raise TypeError(f"build_architecture: unknown shape option {unknown[0]!r}")
    taken = {name: (ok, wanted) for name, ok, wanted in ARCHITECTURES[arch].options}
    options = {}
    for key, value in shape.items():
        # stem_stride 1 is every network's plain stem: model files of any architecture may name it.
        if value is None or (key == "stem_stride" and value == 1 and key not in taken):
            continue
        if key not in taken:
            takers = [a for a, spec in ARCHITECTURES.items() if key in {o[0] for o in spec.options}]
            raise FaceclsError(f"{key}: only {', '.join(takers)} take{'s' if len(takers) == 1 else ''} it, not {arch}")
        ok, wanted = taken[key]
        if not ok(value):
            raise FaceclsError(f"{key}: {value!r} is not {wanted}")
        options[key] = value
    return options


def build_architecture(arch: str, *, mode: str = "full", **shape: Any) -> FaceModel:
    """``arch`` with random weights and the ``shape`` options it takes (``checked_shape``); in
    mode ``head`` its backbone is frozen."""
    check_choice("arch", arch, tuple(ARCHITECTURES))
    check_choice("mode", mode, MODES)
    model = ARCHITECTURES[arch].build(**checked_shape(arch, shape))
    if mode == "head":
        model.freeze_backbone()
    return model


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
