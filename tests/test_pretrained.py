"""Starting weights: a state_dict file, torchvision's ImageNet files from the hub cache, the
loud fallback to random initialisation when they cannot be had."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models import MobileNet_V2_Weights, ResNet18_Weights, WeightsEnum

from facecls.errors import FaceclsError
from facecls.models.architectures import SimpleCNN, build_architecture
from facecls.models.pretrained import build_model, imagenet_cache_file
from tests.test_architectures import assert_same_tensors, one_training_step


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


def test_bad_choices_are_named_in_the_error():
    with pytest.raises(FaceclsError, match="weights_fallback: 'ignore'"):
        build_model("simplecnn", weights_fallback="ignore")
    with pytest.raises(FaceclsError, match="no imagenet weights exist for simplecnn"):
        build_model("simplecnn", weights="imagenet")


def test_weights_file_of_our_own_model_loads_every_tensor(tmp_path):
    source = build_architecture("simplecnn")
    one_training_step(source)
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)

    model, weights_used = build_model("simplecnn", weights=str(path))

    assert weights_used == f"file:{path}"
    assert_same_tensors(model.state_dict(), source.state_dict())


def test_head_mode_freezes_the_loaded_weights_not_random_ones(tmp_path):
    source = build_architecture("simplecnn")
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
