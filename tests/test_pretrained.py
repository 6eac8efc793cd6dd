"""Starting weights: resolved to a tracked file in data/weights/ with its hash, loaded from it, the
loud fallback to random initialisation when ImageNet weights are absent, and fetching them."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models import MobileNet_V2_Weights

from facecls.errors import FaceclsError
from facecls.models.architectures import SimpleCNN, build_architecture
from facecls.models.pretrained import (
    RANDOM_START,
    UNAVAILABLE_IMAGENET,
    build_model,
    fetch_imagenet,
    imagenet_cache_file,
    imagenet_file_name,
    resolve_start,
    sha256,
)
from tests.test_architectures import assert_same_tensors, one_training_step


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """An empty hub cache and no network: every download attempt fails at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    attempts = []

    def refuse_download(url, *args, **kwargs):
        attempts.append(url)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse_download)
    return attempts


@pytest.fixture
def weights_dir(tmp_path):
    folder = tmp_path / "data" / "weights"
    folder.mkdir(parents=True)
    return folder


def saved(state: dict, path) -> dict:
    torch.save(state, path)
    return state


def test_random_needs_no_file():
    assert resolve_start("simplecnn", "random", "random") == RANDOM_START
    model, weights_used = build_model("simplecnn", start=RANDOM_START)
    assert weights_used == "random" and isinstance(model, SimpleCNN)


def test_a_named_file_is_recorded_with_its_hash_and_loads_every_tensor(weights_dir):
    source = build_architecture("simplecnn")
    one_training_step(source)
    saved(source.state_dict(), weights_dir / "mine.pt")

    record = resolve_start("simplecnn", "mine.pt", "random", weights_dir)
    assert record == {"weights": f"file:{weights_dir / 'mine.pt'}", "file": str(weights_dir / "mine.pt"),
                      "sha256": sha256(weights_dir / "mine.pt")}
    model, weights_used = build_model("simplecnn", start=record)
    assert weights_used == record["weights"]
    assert_same_tensors(model.state_dict(), source.state_dict())


def test_head_mode_freezes_the_loaded_weights_not_random_ones(weights_dir):
    source = build_architecture("simplecnn")
    saved(source.state_dict(), weights_dir / "mine.pt")
    model, _ = build_model("simplecnn", mode="head", start=resolve_start("simplecnn", "mine.pt", "random", weights_dir))
    assert_same_tensors(model.backbone.state_dict(), source.backbone.state_dict())
    assert not any(p.requires_grad for p in model.backbone.parameters())


def test_a_file_outside_the_tracked_folder_or_missing_is_refused(tmp_path, weights_dir):
    saved(SimpleCNN().state_dict(), tmp_path / "elsewhere.pt")
    with pytest.raises(FaceclsError, match=f"is not in {weights_dir}/: copy it there, where DVC tracks it"):
        resolve_start("simplecnn", str(tmp_path / "elsewhere.pt"), "random", weights_dir)
    with pytest.raises(FaceclsError, match=f"{weights_dir / 'nowhere.pt'}: weights file not found"):
        resolve_start("simplecnn", "nowhere.pt", "random", weights_dir)


def test_a_file_changed_after_the_weights_stage_is_refused(weights_dir):
    path = weights_dir / "mine.pt"
    saved(SimpleCNN().state_dict(), path)
    record = resolve_start("simplecnn", "mine.pt", "random", weights_dir)
    saved(SimpleCNN().state_dict(), path)
    with pytest.raises(FaceclsError, match="not the file the weights stage recorded"):
        build_model("simplecnn", start=record)


@pytest.mark.parametrize(("content", "problem"), [
    (b"not a torch file at all", "not a readable torch file"),
    ([1, 2, 3], "not a state_dict"),
    (SimpleCNN().state_dict(), "weights do not fit mobilenetv2: .*missing keys such as backbone.features.0.0.weight"),
])
def test_unusable_weights_files_are_named(weights_dir, content, problem):
    path = weights_dir / "bad.pt"
    path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
    with pytest.raises(FaceclsError, match=f"^{path}: {problem}"):
        build_model("mobilenetv2", start=resolve_start("mobilenetv2", "bad.pt", "random", weights_dir))


@pytest.mark.parametrize(("arch", "torchvision_model", "skipped"), [
    ("mobilenetv2", torchvision.models.mobilenet_v2, "classifier.1.weight, classifier.1.bias"),
    ("resnet18", torchvision.models.resnet18, "conv1.weight, fc.weight, fc.bias"),
])
def test_imagenet_files_in_the_tracked_folder_load_into_the_backbone(weights_dir, capsys, offline, arch,
                                                                     torchvision_model, skipped):
    original = saved(torchvision_model(weights=None).state_dict(), weights_dir / imagenet_file_name(arch))
    record = resolve_start(arch, "imagenet", "error", weights_dir)
    assert record["weights"] == "imagenet" and record["file"].endswith(imagenet_file_name(arch))

    model, weights_used = build_model(arch, mode="head", start=record)

    assert weights_used == "imagenet" and offline == []
    loaded = model.backbone.state_dict()
    for key in loaded.keys() - {"conv1.weight"}:  # resnet18's 3x3 stem replaces the 7x7 one and stays random
        assert torch.equal(loaded[key], original[key]), key
    assert skipped in capsys.readouterr().err


def test_imagenet_unavailable_falls_back_to_random_loudly(weights_dir, capsys, offline):
    record = resolve_start("mobilenetv2", "imagenet", "random", weights_dir)
    assert record == {**RANDOM_START, "weights": UNAVAILABLE_IMAGENET}
    err = capsys.readouterr().err
    assert "WARNING: imagenet weights for mobilenetv2 unavailable" in err and "facecls weights fetch" in err
    assert str(weights_dir / "mobilenet_v2-b0353104.pth") in err
    assert offline == [], "the pipeline never downloads"


def test_imagenet_unavailable_with_fallback_error_names_the_file_to_provide(weights_dir):
    with pytest.raises(FaceclsError, match=f"{weights_dir / 'resnet18-f37072fd.pth'} is absent"):
        resolve_start("resnet18", "imagenet", "error", weights_dir)


def test_bad_choices_are_named_in_the_error(weights_dir):
    with pytest.raises(FaceclsError, match="weights_fallback: 'ignore'"):
        resolve_start("simplecnn", "random", "ignore", weights_dir)
    with pytest.raises(FaceclsError, match="no imagenet weights exist for simplecnn"):
        resolve_start("simplecnn", "imagenet", "random", weights_dir)


def test_fetch_copies_from_the_hub_cache(weights_dir, offline):
    cached = imagenet_cache_file(MobileNet_V2_Weights.IMAGENET1K_V1)
    cached.parent.mkdir(parents=True)
    saved(torchvision.models.mobilenet_v2(weights=None).state_dict(), cached)
    path, source = fetch_imagenet("mobilenetv2", weights_dir)
    assert path == weights_dir / "mobilenet_v2-b0353104.pth" and sha256(path) == sha256(cached)
    assert "hub cache" in source and offline == []


def test_fetch_without_cache_or_network_says_what_to_do(weights_dir, offline):
    with pytest.raises(FaceclsError, match="not in the torch hub cache and the download failed"):
        fetch_imagenet("mobilenetv2", weights_dir)
    assert len(offline) == 1 and list(weights_dir.iterdir()) == []
