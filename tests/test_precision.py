"""train.precision: its check, what auto resolves to with and without bf16 in hardware, and the
autocast that applies it."""

from __future__ import annotations

import pytest
import torch

from facecls.errors import FaceclsError
from facecls.models import precision
from facecls.models.architectures import build_architecture
from facecls.models.inference import predict_logits
from facecls.models.precision import PRECISIONS, precision_setting, resolve_precision, scoring_precision
from tests.archives import project_params
from tests.toy_faces import conv_output_dtypes, toy_images

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture
def bf16_hardware(monkeypatch):
    """Pretend the CPU and the GPU do (True) or do not (False) have bf16 in hardware."""
    def pretend(has: bool) -> None:
        monkeypatch.setattr(precision, "cpu_has_bf16", lambda: has)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: has)
    return pretend


@pytest.mark.parametrize("value", ["fp16", "BF16", "", None, 16])
def test_a_bad_precision_is_named_with_its_key(value):
    expected = f"one of {PRECISIONS}, got {value!r}"
    with pytest.raises(FaceclsError) as error:
        precision_setting(project_params(**{"train.precision": value}), "simplecnn")
    assert str(error.value) == f"params.yaml: train.precision must be {expected}"
    with pytest.raises(FaceclsError) as error:
        precision_setting(project_params(**{"variants.simplecnn.precision": value or "half"}), "simplecnn")
    assert str(error.value).startswith("params.yaml: variants.simplecnn.precision must be one of ")


def test_a_variant_sets_its_own_precision_and_the_ensemble_takes_the_train_one():
    params = project_params(**{"train.precision": "fp32", "variants.simplecnn.precision": "bf16"})
    assert precision_setting(params, "simplecnn") == "bf16"
    assert precision_setting(params, "simplecnn_weighted") == "fp32"
    assert precision_setting(params, "ensemble") == "fp32"
    params["variants"]["simplecnn"]["precision"] = None  # empty: inherits, as every variant key does
    assert precision_setting(params, "simplecnn") == "fp32"


def test_auto_is_fp32_everywhere_without_bf16_in_hardware(bf16_hardware):
    bf16_hardware(False)
    for device in (CPU, CUDA):
        for family in ("simplecnn", "mobilenetv2", "resnet18"):
            assert {resolve_precision("auto", [family], phase, device) for phase in ("train", "score")} == {"fp32"}


def test_auto_on_a_bf16_cpu_takes_bf16_only_where_it_measured_faster(bf16_hardware):
    bf16_hardware(True)
    picks = {(f, phase): resolve_precision("auto", [f], phase, CPU)
             for f in ("simplecnn", "mobilenetv2", "resnet18") for phase in ("train", "score")}
    assert picks == {("simplecnn", "train"): "bf16", ("simplecnn", "score"): "bf16",
                     ("mobilenetv2", "train"): "fp32", ("mobilenetv2", "score"): "bf16",
                     ("resnet18", "train"): "fp32", ("resnet18", "score"): "fp32"}
    ensemble = {"arch": "ensemble", "members": [{"arch": "simplecnn"}, {"arch": "mobilenetv2"}]}
    assert scoring_precision("auto", ensemble, CPU) == "bf16"
    ensemble["members"].append({"arch": "resnet18"})  # every member must be faster in bf16
    assert scoring_precision("auto", ensemble, CPU) == "fp32"
    assert resolve_precision("auto", ["mobilenetv2"], "train", CUDA) == "bf16"  # tensor cores: every family


def test_an_explicit_precision_is_kept_and_emulated_bf16_is_announced(bf16_hardware, capsys):
    bf16_hardware(True)
    assert resolve_precision("fp32", ["simplecnn"], "train", CPU) == "fp32"
    assert capsys.readouterr().err == ""
    bf16_hardware(False)
    precision._warn_emulated.cache_clear()
    assert resolve_precision("bf16", ["resnet18"], "train", CPU) == "bf16"
    assert resolve_precision("bf16", ["resnet18"], "score", CPU) == "bf16"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: precision bf16 on a cpu without bf16 in hardware")


def test_cpu_support_comes_from_torch_or_else_from_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert precision.cpu_has_bf16()
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert not precision.cpu_has_bf16()
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")  # a torch without the probe
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert precision.cpu_has_bf16()
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert not precision.cpu_has_bf16()


def test_kernels_held_to_avx2_count_as_a_cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not precision.cpu_has_bf16()
    assert resolve_precision("auto", ["simplecnn"], "train", CPU) == "fp32"


def test_scoring_computes_in_the_precision_given_and_returns_float32_logits():
    torch.manual_seed(0)
    model = build_architecture("simplecnn").to(memory_format=torch.channels_last)
    images = toy_images(torch.tensor([0, 1, 1, 0]).numpy())
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        with conv_output_dtypes() as seen:
            logits = predict_logits(model, images, CPU, precision=name)
        assert seen["eval"] == {dtype} and logits.dtype == "float32"
    fp32, bf16 = (predict_logits(model, images, CPU, precision=p) for p in ("fp32", "bf16"))
    assert abs(fp32 - bf16).max() < 0.05 * max(1.0, abs(fp32).max())  # bf16 keeps about 3 significant digits
