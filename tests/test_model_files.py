"""Saving trained models and loading them back safely."""

from __future__ import annotations

import pathlib

import pytest
import torch

from facecls.errors import FaceclsError
from facecls.models.architectures import build_architecture
from facecls.models.files import MODEL_FORMAT, load_model, save_model


def config(arch: str = "simplecnn", mode: str = "full", variant: str = "simplecnn") -> dict:
    return {
        "arch": arch,
        "mode": mode,
        "variant": variant,
        "weights_used": "random",
        "threshold": 0.42,
    }


def trained(arch: str = "simplecnn", mode: str = "full") -> torch.nn.Module:
    """A model whose weights and BatchNorm statistics differ from a fresh one."""
    model = build_architecture(arch, mode=mode)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(torch.randn(4, 3, 64, 64)).square().mean()
    loss.backward()
    optimizer.step()
    return model.eval()


def test_round_trip_restores_weights_config_and_extras(tmp_path):
    model = trained()
    path = tmp_path / "models" / "simplecnn.pt"
    save_model(path, model, config(), epoch=7, history=[0.3, 0.2])

    loaded, info = load_model(path, expect_variant="simplecnn")

    assert not loaded.training
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    faces = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(faces), model(faces))
    assert info == {"format": MODEL_FORMAT, "config": config(), "epoch": 7, "history": [0.3, 0.2]}
    assert [p.name for p in path.parent.iterdir()] == ["simplecnn.pt"]


def test_round_trip_keeps_a_head_mode_backbone_frozen(tmp_path):
    path = tmp_path / "head.pt"
    model = trained("mobilenetv2", "head")
    save_model(path, model, config("mobilenetv2", "head", "mobilenetv2_head"))
    loaded, _ = load_model(path)
    assert not any(p.requires_grad for p in loaded.backbone.parameters())
    loaded.train()
    assert not loaded.backbone.training


def test_failed_save_keeps_the_previous_file_and_leaves_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_model(path, trained(), config(), epoch=1)
    before = path.read_bytes()

    def crash_mid_write(record, target):
        pathlib.Path(target).write_bytes(b"half a model")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, trained(), config(), epoch=2)

    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_save_rejects_a_config_it_could_not_load_back(tmp_path):
    model = trained()
    with pytest.raises(ValueError, match="config lacks mode"):
        save_model(tmp_path / "a.pt", model, {"arch": "simplecnn"})
    with pytest.raises(ValueError, match="plain JSON values"):
        save_model(tmp_path / "b.pt", model, {**config(), "data": tmp_path})
    assert list(tmp_path.iterdir()) == []


def test_missing_model_file_is_named(tmp_path):
    path = tmp_path / "models" / "absent.pt"
    with pytest.raises(FaceclsError, match=f"^{path}: file not found$"):
        load_model(path)


def test_plain_state_dict_is_not_a_model_file(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(build_architecture("simplecnn").state_dict(), path)
    with pytest.raises(FaceclsError, match=f"^{path}: not a facecls model file"):
        load_model(path)


class RunsCodeWhenUnpickled:
    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        # Harmless stand-in for an attack: unpickling creates the marker file.
        return (open, (str(self.marker), "w"))


def test_file_with_pickled_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": MODEL_FORMAT, "payload": RunsCodeWhenUnpickled(marker)}, path)

    with pytest.raises(
        FaceclsError, match=f"^{path}: refused: file contains pickled code, not plain weights$"
    ):
        load_model(path)
    assert not marker.exists()

    # The payload is real: an unsafe load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_model_of_another_variant_is_refused(tmp_path):
    path = tmp_path / "x.pt"
    save_model(path, trained(), config(variant="a"))
    with pytest.raises(FaceclsError) as error:
        load_model(path, expect_variant="b")
    assert str(error.value) == f"{path}: trained as variant 'a', expected 'b'"


def test_weights_not_fitting_the_recorded_architecture_are_named(tmp_path):
    path = tmp_path / "mislabelled.pt"
    save_model(path, trained("simplecnn"), config(arch="mobilenetv2"))
    with pytest.raises(FaceclsError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: weights do not fit architecture 'mobilenetv2': ")
    assert "backbone.features.0.0.weight" in message
    assert "\n" not in message


def test_unknown_architecture_in_the_file_is_named(tmp_path):
    path = tmp_path / "future.pt"
    save_model(path, trained(), config(arch="vit"))
    with pytest.raises(FaceclsError, match=f"^{path}: arch: 'vit' is not one of"):
        load_model(path)


@pytest.mark.parametrize("damage", ["truncated", "text", "empty"])
def test_damaged_model_file_is_named_on_one_line(tmp_path, damage):
    path = tmp_path / "model.pt"
    save_model(path, trained(), config())
    whole = path.read_bytes()
    path.write_bytes({"truncated": whole[: len(whole) // 2], "text": b"hello", "empty": b""}[damage])
    with pytest.raises(FaceclsError) as error:
        load_model(path)
    assert str(error.value).startswith(f"{path}: not a readable torch file (")
    assert "\n" not in str(error.value)


def test_a_model_file_rebuilds_the_shape_it_was_trained_in(tmp_path):
    model = build_architecture("vgg64", width=8, stem="single").eval()
    save_model(tmp_path / "narrow.pt", model, {**config("vgg64", variant="narrow"), "width": 8, "stem": "single"})
    loaded, _ = load_model(tmp_path / "narrow.pt", expect_variant="narrow")
    faces = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(faces), model(faces))
    save_model(tmp_path / "unsaid.pt", model, config("vgg64", variant="unsaid"))  # shape not recorded
    with pytest.raises(FaceclsError, match="weights do not fit architecture 'vgg64'"):
        load_model(tmp_path / "unsaid.pt")
