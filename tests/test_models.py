"""Architectures, starting weights, freezing and learning-rate groups."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights, WeightsEnum

from facecls.errors import FaceclsError
from facecls.models import (
    SimpleCNN,
    build_model,
    count_parameters,
    imagenet_cache_file,
    parameter_groups,
)

ARCHS = ("simplecnn", "mobilenetv2", "resnet18")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """An empty hub cache and no network: every download attempt fails at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    attempts = []

    def refuse_download(self, *args, **kwargs):
        attempts.append(self)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", refuse_download)
    return attempts


def faces(n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, 64, 64, generator=torch.Generator().manual_seed(n))


def assert_same_tensors(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), key


def test_simplecnn_has_the_study_parameter_count():
    assert count_parameters(SimpleCNN()) == (1_142_785, 1_142_785)
    model, weights_used = build_model("simplecnn")
    assert count_parameters(model) == (1_142_785, 1_142_785)
    assert weights_used == "random"


@pytest.mark.parametrize(
    ("arch", "total", "head_trainable"),
    [
        ("simplecnn", 1_142_785, 1_049_089),
        ("mobilenetv2", 2_225_153, 1281),
        ("resnet18", 11_169_345, 513),
    ],
)
def test_head_mode_trains_only_the_head(arch, total, head_trainable):
    assert count_parameters(build_model(arch, mode="full")[0]) == (total, total)
    assert count_parameters(build_model(arch, mode="head")[0]) == (total, head_trainable)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_gives_one_logit_per_face(arch, batch):
    model, _ = build_model(arch)
    model.eval()
    with torch.no_grad():
        assert model(faces(batch)).shape == (batch,)


def test_resnet18_keeps_full_resolution_unless_stem_stride_says_otherwise():
    features = build_model("resnet18")[0].backbone
    with torch.no_grad():
        assert features.layer1(features.conv1(faces(1))).shape[-1] == 64
        strided = build_model("resnet18", stem_stride=2)[0].backbone
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
    model, _ = build_model(arch, mode="head")
    backbone_before, head_before = snapshot(model.backbone), snapshot(model.head)

    one_training_step(model)

    assert model.head.training and not model.backbone.training
    assert_same_tensors(snapshot(model.backbone), backbone_before)
    head_after = snapshot(model.head)
    assert any(not torch.equal(head_after[k], head_before[k]) for k in head_before)


def test_full_mode_trains_the_backbone_too():
    model, _ = build_model("simplecnn", mode="full")
    before = snapshot(model.backbone)
    one_training_step(model)
    assert model.backbone.training
    after = snapshot(model.backbone)
    assert not torch.equal(after["0.0.weight"], before["0.0.weight"])
    assert not torch.equal(after["0.1.running_mean"], before["0.1.running_mean"])


def test_parameter_groups_give_the_backbone_a_scaled_learning_rate():
    model, _ = build_model("mobilenetv2", mode="full")
    groups = {g["name"]: g for g in parameter_groups(model, lr=0.01, lr_factor=0.1)}
    assert groups["backbone"]["lr"] == pytest.approx(0.001)
    assert groups["head"]["lr"] == 0.01
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == 2_225_153

    frozen, _ = build_model("mobilenetv2", mode="head")
    (only,) = parameter_groups(frozen, lr=0.01, lr_factor=0.1)
    assert only["name"] == "head" and only["lr"] == 0.01
    assert sum(p.numel() for p in only["params"]) == 1281


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "vgg16"}, "arch: 'vgg16' is not one of simplecnn, mobilenetv2, resnet18"),
        ({"arch": "simplecnn", "mode": "partial"}, "mode: 'partial' is not one of full, head"),
        ({"arch": "simplecnn", "weights_fallback": "ignore"}, "weights_fallback: 'ignore'"),
        ({"arch": "simplecnn", "dropout": 1.5}, "dropout: 1.5"),
        ({"arch": "mobilenetv2", "stem_stride": 2}, "stem_stride: only resnet18"),
        ({"arch": "simplecnn", "weights": "imagenet"}, "no imagenet weights exist for simplecnn"),
    ],
)
def test_bad_choices_are_named_in_the_error(kwargs, message):
    arch = kwargs.pop("arch")
    with pytest.raises(FaceclsError, match=message):
        build_model(arch, **kwargs)


def test_bad_learning_rates_are_named_in_the_error():
    model, _ = build_model("simplecnn")
    with pytest.raises(FaceclsError, match="lr: 0"):
        parameter_groups(model, lr=0, lr_factor=0.1)
    with pytest.raises(FaceclsError, match="lr_factor: -1"):
        parameter_groups(model, lr=0.1, lr_factor=-1)


def test_weights_file_of_our_own_model_loads_every_tensor(tmp_path):
    source, _ = build_model("simplecnn")
    one_training_step(source)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)

    model, weights_used = build_model("simplecnn", weights=str(path))

    assert weights_used == f"file:{path}"
    assert_same_tensors(model.state_dict(), source.state_dict())


def test_head_mode_freezes_the_loaded_weights_not_random_ones(tmp_path):
    source, _ = build_model("simplecnn")
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    model, _ = build_model("simplecnn", mode="head", weights=path)
    assert_same_tensors(model.backbone.state_dict(), source.backbone.state_dict())
    assert not any(p.requires_grad for p in model.backbone.parameters())


@pytest.mark.parametrize(
    ("arch", "torchvision_model", "skipped"),
    [
        ("mobilenetv2", torchvision.models.mobilenet_v2, "classifier.1.weight, classifier.1.bias"),
        ("resnet18", torchvision.models.resnet18, "conv1.weight, fc.weight, fc.bias"),
    ],
)
def test_torchvision_state_dict_loads_into_the_backbone(
    tmp_path, capsys, arch, torchvision_model, skipped
):
    original = torchvision_model(weights=None).state_dict()
    path = tmp_path / "imagenet-shaped.pt"
    torch.save(original, path)

    model, weights_used = build_model(arch, weights=path)

    assert weights_used == f"file:{path}"
    loaded = model.backbone.state_dict()
    for key in loaded.keys() - {"conv1.weight"}:
        assert torch.equal(loaded[key], original[key]), key
    assert skipped in capsys.readouterr().err


def test_missing_weights_file_is_named(tmp_path):
    path = tmp_path / "nowhere.pt"
    with pytest.raises(FaceclsError, match=f"{path}: file not found"):
        build_model("simplecnn", weights=str(path))


def test_garbage_weights_file_is_named(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a torch file at all")
    with pytest.raises(FaceclsError, match=f"{path}: not a readable torch file"):
        build_model("simplecnn", weights=str(path))


def test_weights_file_that_is_not_a_state_dict_is_named(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(FaceclsError, match=f"{path}: not a state_dict"):
        build_model("simplecnn", weights=str(path))


def test_weights_of_another_architecture_report_missing_keys(tmp_path):
    path = tmp_path / "simplecnn.pt"
    torch.save(SimpleCNN().state_dict(), path)
    with pytest.raises(FaceclsError) as error:
        build_model("mobilenetv2", weights=str(path))
    message = str(error.value)
    assert message.startswith(f"{path}: weights do not fit mobilenetv2: ")
    assert "missing keys such as backbone.features.0.0.weight" in message
    assert "\n" not in message


def test_imagenet_unavailable_falls_back_to_random_loudly(offline, capsys):
    cache_file = imagenet_cache_file(MobileNet_V2_Weights.IMAGENET1K_V1)
    with pytest.warns(UserWarning, match="imagenet weights for mobilenetv2 unavailable"):
        model, weights_used = build_model("mobilenetv2", weights="imagenet")
    assert weights_used == "random (imagenet unavailable)"
    assert str(cache_file) in capsys.readouterr().err
    assert len(offline) == 1


def test_imagenet_unavailable_with_fallback_error_names_the_cache_file(offline):
    cache_file = imagenet_cache_file(ResNet18_Weights.IMAGENET1K_V1)
    assert cache_file.name == "resnet18-f37072fd.pth"
    with pytest.raises(FaceclsError, match=f"provide the file {cache_file}"):
        build_model("resnet18", weights="imagenet", weights_fallback="error")


@pytest.mark.parametrize(
    ("arch", "weights", "torchvision_model"),
    [
        ("mobilenetv2", MobileNet_V2_Weights.IMAGENET1K_V1, torchvision.models.mobilenet_v2),
        ("resnet18", ResNet18_Weights.IMAGENET1K_V1, torchvision.models.resnet18),
    ],
)
def test_imagenet_weights_in_the_hub_cache_load_offline(
    tmp_path, offline, arch, weights, torchvision_model
):
    cache_file = imagenet_cache_file(weights)
    assert cache_file.is_relative_to(tmp_path)
    cache_file.parent.mkdir(parents=True)
    original = torchvision_model(weights=None).state_dict()
    torch.save(original, cache_file)

    model, weights_used = build_model(
        arch, mode="head", weights="imagenet", weights_fallback="error"
    )

    assert weights_used == "imagenet"
    assert offline == []
    loaded = model.backbone.state_dict()
    # resnet18's 3x3 stem replaces the 7x7 ImageNet one and stays random.
    for key in loaded.keys() - {"conv1.weight"}:
        assert torch.equal(loaded[key], original[key]), key
