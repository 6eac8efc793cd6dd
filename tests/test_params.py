"""params.yaml: every wrong value stops the stage that reads it at once, naming the key."""

from __future__ import annotations

import pytest
import yaml

from facecls.data.archive import archive_setting
from facecls.data.folds import cv_settings
from facecls.data.split import split_settings
from facecls.device import device_setting
from facecls.errors import FaceclsError
from facecls.evaluation.choice import predict_variant
from facecls.evaluation.evaluate import evaluate_settings
from facecls.models.architectures import ARCHITECTURES
from facecls.models.precision import PRECISIONS, precision_setting
from facecls.params import load_params
from facecls.training.config import variant_config
from tests.archives import REPO, assert_clean_failure, project_params, write_params

ARCHS = tuple(ARCHITECTURES)


def validate_params(params: dict) -> None:
    """Every check the stages make, as a whole run makes them."""
    archive_setting(params)
    split_settings(params)
    cv_settings(params)
    for name in params["variants"]:
        variant_config(params, name)
        precision_setting(params, name)
    precision_setting(params, "ensemble")
    evaluate_settings(params)
    device_setting(params)
    predict_variant(params)


def refusal(**changes) -> str:
    with pytest.raises(FaceclsError) as error:
        validate_params(project_params(**changes))
    assert "\n" not in str(error.value)
    return str(error.value)


def test_the_project_params_are_valid():
    params = load_params(REPO / "params.yaml")
    for name in params["variants"]:
        config = variant_config(params, name)
        assert config["variant"] == name and config["arch"] in ARCHS and config["epochs"] > 0


def test_a_variant_overrides_the_train_knobs():
    params = project_params(**{"variants.simplecnn.lr": 0.01})
    assert variant_config(params, "simplecnn")["lr"] == 0.01
    assert variant_config(params, "simplecnn_weighted")["lr"] == params["train"]["lr"]


@pytest.mark.parametrize("value", ["resnet50", "", ["simplecnn"]])
def test_unknown_predict_variant(value):
    names = ", ".join(project_params()["variants"])
    assert refusal(**{"predict.variant": value}) == (
        f"params.yaml: predict.variant must be 'best' or one of {names}, got {value!r}")


def test_unknown_variant_asked_for_by_a_stage():
    with pytest.raises(FaceclsError, match=r"^params.yaml: unknown variant 'vit' \(variants: simplecnn, "):
        variant_config(project_params(), "vit")


def test_unknown_architecture():
    assert refusal(**{"variants.mobilenetv2_head.arch": "vit"}) == (
        f"params.yaml: variants.mobilenetv2_head.arch must be one of {ARCHS}, got 'vit'")


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "10"])
def test_epochs_must_be_a_positive_integer(value):
    assert refusal(**{"train.epochs": value}) == (
        f"params.yaml: train.epochs must be a positive integer, got {value!r}")


def test_a_bad_value_set_in_a_variant_names_the_variant_key():
    assert refusal(**{"variants.simplecnn_weighted.epochs": 0}) == (
        "params.yaml: variants.simplecnn_weighted.epochs must be a positive integer, got 0")


@pytest.mark.parametrize("key", ["train.precision", "variants.mobilenetv2_full.precision"])
def test_an_unknown_precision_names_its_key(key):
    assert refusal(**{key: "fp16"}) == f"params.yaml: {key} must be one of {PRECISIONS}, got 'fp16'"


@pytest.mark.parametrize("value", [0, 1, -0.1, 1.5, "0.2", float("nan"), None])
def test_the_test_fraction_must_lie_strictly_between_0_and_1(value):
    assert refusal(**{"split.test_fraction": value}).startswith(
        "params.yaml: split.test_fraction must be a number in (0, 1), got ")


@pytest.mark.parametrize("value", [1, 0, 2.5, "5", None])
def test_cross_validation_needs_two_folds_or_more(value):
    assert refusal(**{"cv.folds": value}).startswith("params.yaml: cv.folds must be an integer >= 2, got ")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("train.early_stopping", 0.5, "a share in [0, 0.5) (0: the schedule runs to its end)"),
    ("train.early_stopping", -0.1, "a share in [0, 0.5)"),
    ("train.fold_models", 0, "all or a positive integer"),
    ("train.fold_models", "some", "all or a positive integer"),
    ("train.augment.translate", 2.5, "whole pixels from 0 to 16"),
    ("train.half_res_epochs", 99, "an integer from 0 to the epochs (12)"),
    ("train.half_res_epochs", 2, "0 for simplecnn, which takes 64x64 faces only"),
])
def test_the_cross_validation_knobs_are_checked(key, value, expected):
    assert refusal(**{key: value}).startswith(f"params.yaml: {key} must be {expected}")


def test_an_infinite_learning_rate_is_refused():
    assert refusal(**{"train.lr": float("inf")}) == "params.yaml: train.lr must be a positive number, got inf"


def test_unknown_key_in_a_variant():
    assert refusal(**{"variants.simplecnn.epoch": 30}).startswith(
        "params.yaml: unknown key variants.simplecnn.epoch (known: ")


def test_a_missing_key_is_named():
    params = project_params()
    del params["split"]["seed"]
    with pytest.raises(FaceclsError, match="^params.yaml: missing key split.seed$"):
        validate_params(params)


@pytest.mark.parametrize(("text", "message"), [
    ("split:\n  test_fraction: 0.2\n seed: 1\n", "not valid YAML (line 3, column 2: expected <block end>, "
                                                "but found '<block mapping start>')"),
    ("split: [0.2\n", "not valid YAML (line 2, column 1: expected ',' or ']', but got '<stream end>')"),
    ("- just\n- a list\n", "expected a mapping of sections"),
    ("", "expected a mapping of sections"),
])
def test_a_file_that_is_not_params_is_refused(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(FaceclsError) as error:
        load_params(path)
    assert str(error.value) == f"{path}: {message}"


def test_missing_or_unreadable_params_file(tmp_path):
    with pytest.raises(FaceclsError, match=f"^{tmp_path / 'params.yaml'}: params file not found$"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(FaceclsError, match=f"^{tmp_path}: is a folder, expected the params file$"):
        load_params(tmp_path)
    (tmp_path / "params.yaml").write_bytes(b"data:\n  archive: \xff\n")
    with pytest.raises(FaceclsError, match=f"^{tmp_path / 'params.yaml'}: not a UTF-8 text file"):
        load_params(tmp_path / "params.yaml")


@pytest.mark.parametrize(("stage", "args", "key", "value"), [
    ("check", [], "data.archive", ""), ("index", [], "split.seed", "42"),
    ("train", ["simplecnn"], "train.epochs", 0), ("train", ["simplecnn"], "variants.simplecnn.arch", "vit"),
    ("evaluate", ["simplecnn"], "evaluate.threshold", "0.4"), ("evaluate", ["simplecnn"], "train.precision", "half"),
    ("ensemble", ["ensemble", "vgg64", "simplecnn_weighted"], "train.precision", "half"),
    ("predict", [], "predict.variant", "nope")])
def test_a_stage_stops_on_bad_params_with_one_line(tmp_path, run_stage, stage, args, key, value):
    write_params(tmp_path, **{key: value})
    result = run_stage(stage, tmp_path, *args)
    assert_clean_failure(result, "params.yaml: ", key)
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_a_stage_reports_broken_yaml_with_one_line(tmp_path, run_stage):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(project_params()) + "split: [\n")
    assert_clean_failure(run_stage("check", tmp_path), "params.yaml: not valid YAML (line ")


def test_an_unknown_train_key_is_named(tmp_path):
    params = project_params()
    params["train"]["epoch"] = 30
    with pytest.raises(FaceclsError, match="unknown key train.epoch "):
        validate_params(params)


def test_an_empty_variant_value_inherits_the_train_value():
    params = project_params()
    params["variants"]["simplecnn"]["lr"] = None
    assert variant_config(params, "simplecnn")["lr"] == params["train"]["lr"]
    params["variants"]["simplecnn"]["lr"] = 0.0005
    assert variant_config(params, "simplecnn")["lr"] == 0.0005
