"""Architectures: one logit per face, freezing and learning-rate groups."""

from __future__ import annotations

import pytest
import torch

from facecls.errors import FaceclsError
from facecls.models.architectures import ARCHITECTURES, SimpleCNN, build_architecture, parameter_groups

ARCHS = tuple(ARCHITECTURES)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    return (sum(p.numel() for p in model.parameters()),
            sum(p.numel() for p in model.parameters() if p.requires_grad))


def faces(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(n))


def assert_same_tensors(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def test_simplecnn_has_the_study_parameter_count():
    assert count_parameters(SimpleCNN()) == (1_142_785, 1_142_785)
    assert count_parameters(build_architecture("simplecnn")) == (1_142_785, 1_142_785)


@pytest.mark.parametrize(
    ("arch", "total", "head_trainable"),
    [
        ("simplecnn", 1_142_785, 1_049_089),
        ("mobilenetv2", 2_225_153, 1281),
        ("resnet18", 11_169_345, 513),
    ],
)
def test_head_mode_trains_only_the_head(arch, total, head_trainable):
    assert count_parameters(build_architecture(arch, mode="full")) == (total, total)
    assert count_parameters(build_architecture(arch, mode="head")) == (total, head_trainable)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_gives_one_logit_per_face(arch, batch):
    model = build_architecture(arch)
    model.eval()
    with torch.no_grad():
        assert model(faces(batch)).shape == (batch,)


def test_resnet18_keeps_full_resolution_unless_stem_stride_says_otherwise():
    features = build_architecture("resnet18").backbone
    with torch.no_grad():
        assert features.layer1(features.conv1(faces(1))).shape[-1] == 64
        strided = build_architecture("resnet18", stem_stride=2).backbone
        assert strided.layer1(strided.conv1(faces(1))).shape[-1] == 32


def one_training_step(model, lr_factor: float = 1.0) -> None:
    model.train()
    optimizer = torch.optim.SGD(parameter_groups(model, lr=0.1, lr_factor=lr_factor))
    labels = torch.tensor([0.0, 1.0])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(faces(2)), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_head_mode_leaves_backbone_weights_and_batchnorm_statistics_untouched(arch):
    model = build_architecture(arch, mode="head")
    backbone_before, head_before = snapshot(model.backbone), snapshot(model.head)

    one_training_step(model)

    assert model.head.training and not model.backbone.training
    assert_same_tensors(snapshot(model.backbone), backbone_before)
    head_after = snapshot(model.head)
    assert any(not torch.equal(head_after[k], head_before[k]) for k in head_before)


def test_full_mode_trains_the_backbone_too():
    model = build_architecture("simplecnn", mode="full")
    before = snapshot(model.backbone)
    one_training_step(model)
    assert model.backbone.training
    after = snapshot(model.backbone)
    assert not torch.equal(after["0.0.weight"], before["0.0.weight"])
    assert not torch.equal(after["0.1.running_mean"], before["0.1.running_mean"])


def test_parameter_groups_give_the_backbone_a_scaled_learning_rate():
    model = build_architecture("mobilenetv2", mode="full")
    groups = {g["name"]: g for g in parameter_groups(model, lr=0.01, lr_factor=0.1)}
    assert groups["backbone"]["lr"] == pytest.approx(0.001)
    assert groups["head"]["lr"] == 0.01
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == 2_225_153

    frozen = build_architecture("mobilenetv2", mode="head")
    (only,) = parameter_groups(frozen, lr=0.01, lr_factor=0.1)
    assert only["name"] == "head" and only["lr"] == 0.01
    assert sum(p.numel() for p in only["params"]) == 1281


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "vgg16"}, "arch: 'vgg16' is not one of simplecnn, vgg64, mobilenetv2, resnet18"),
        ({"arch": "simplecnn", "mode": "partial"}, "mode: 'partial' is not one of full, head"),
        ({"arch": "mobilenetv2", "stem_stride": 2}, "stem_stride: only resnet18"),
        ({"arch": "resnet18", "stem_stride": 0}, "stem_stride: 0 is not a positive integer"),
    ],
)
def test_bad_choices_are_named_in_the_error(kwargs, message):
    arch = kwargs.pop("arch")
    with pytest.raises(FaceclsError, match=message):
        build_architecture(arch, **kwargs)


def test_bad_learning_rates_are_named_in_the_error():
    model = build_architecture("simplecnn")
    with pytest.raises(FaceclsError, match="lr: 0"):
        parameter_groups(model, lr=0, lr_factor=0.1)
    with pytest.raises(FaceclsError, match="lr_factor: -1"):
        parameter_groups(model, lr=0.1, lr_factor=-1)


def test_vgg64_shape_options_change_its_shape_and_cost():
    default, single, narrow = (build_architecture("vgg64", **kw) for kw in ({}, {"stem": "single"}, {"width": 24}))
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) for model in (default, single)]
    assert convs == [7, 6], "three pairs and one more; the single stem drops the full-resolution second conv"
    assert count_parameters(narrow)[0] < count_parameters(default)[0]
    assert build_architecture("vgg64", blocks=4)(faces(2)).shape == (2,)


@pytest.mark.parametrize(("arch", "shape", "message"), [
    ("simplecnn", {"width": 48}, "width: only vgg64 takes it, not simplecnn"),
    ("vgg64", {"stem": "triple"}, "stem: 'triple' is not pair or single"),
    ("vgg64", {"blocks": 5}, "blocks: 5 is not an integer from 1 to 4"),
])
def test_a_shape_option_an_architecture_does_not_take_is_named(arch, shape, message):
    with pytest.raises(FaceclsError, match=message):
        build_architecture(arch, **shape)
