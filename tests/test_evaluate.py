"""Scoring a cross-validated variant: the threshold from its out-of-fold scores, its out-of-fold and
test figures, the files beside them."""

import csv
import json

import pytest
import torch

from facecls.errors import FaceclsError
from facecls.evaluation.evaluate import evaluate_variant
from facecls.models.files import load_model
from facecls.training.cross_validation import train_cross_validated
from tests.toy_faces import conv_output_dtypes, toy_config, toy_set


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    data = toy_set(n=160, tune=False)
    with pytest.MonkeyPatch.context() as patch:  # outside the checkout, as conftest's fixture says why
        patch.chdir(root)
        train_cross_validated(toy_config(epochs=2), data, 2, 0, root / "toy.pt", root / "log")
    return root, data


def test_evaluate_writes_metrics_plot_data_and_figures(trained, tmp_path):
    root, data = trained
    metrics = evaluate_variant("toy", root / "toy.pt", data, tta=True, threshold_method="robust",
                               metrics_path=tmp_path / "metrics" / "toy.json", out_dir=tmp_path / "eval")
    saved = json.loads((tmp_path / "metrics" / "toy.json").read_text())
    assert saved == metrics
    for key in ("hter", "recall_0", "recall_1", "threshold", "auc", "hter_at_0_5", "weights", "eer", "confusion",
                "oof_hter", "oof_hter_ci95", "oof_recall_0", "oof_auc", "oof_fold_thresholds"):
        assert key in saved
    assert saved["weights"] == "random"
    assert saved["hter"] == pytest.approx(((1 - saved["recall_0"]) + (1 - saved["recall_1"])) / 2)
    assert sum(map(sum, saved["confusion"])) == len(data.test_rows) == saved["n_test"]
    assert saved["n_oof"] == len(data.train_rows) and saved["folds_scored"] == 2
    assert len(saved["oof_fold_thresholds"]) == 2 and len(saved["fold_model_test_hter"]) == 2
    assert saved["oof_hter_ci95"][0] <= saved["oof_hter"] <= saved["oof_hter_ci95"][1]
    roc = json.loads((tmp_path / "eval" / "roc.json").read_text())
    assert {"fpr", "tpr"} <= set(roc[0])
    confusion = json.loads((tmp_path / "eval" / "confusion.json").read_text())
    assert len(confusion) == len(data.test_rows)
    for name in ("training_curves", "roc", "confusion", "confident_errors"):
        assert (tmp_path / "eval" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    oof = list(csv.DictReader((tmp_path / "eval" / "oof_scores.csv").open(newline="")))
    assert sorted(int(r["row"]) for r in oof) == data.train_rows.tolist()
    # Each face labelled at its fold's threshold, chosen on the other fold's scores.
    for row in oof:
        threshold = saved["oof_fold_thresholds"][int(row["fold"])]
        assert int(row["predicted"]) == int(float(row["score"]) >= threshold)
    test = list(csv.DictReader((tmp_path / "eval" / "test_scores.csv").open(newline="")))
    assert sorted(int(r["row"]) for r in test) == data.test_rows.tolist()


def test_fixed_threshold_gives_the_0_5_figures(trained, tmp_path):
    root, data = trained
    m = evaluate_variant("toy", root / "toy.pt", data, tta=False, threshold_method="0.5",
                         metrics_path=tmp_path / "m.json", out_dir=tmp_path / "eval")
    assert m["threshold"] == 0.5 and m["hter"] == m["hter_at_0_5"] and m["oof_fold_thresholds"] == [0.5, 0.5]


def test_a_model_of_another_variant_or_without_out_of_fold_scores_is_refused(trained, tmp_path):
    root, data = trained
    with pytest.raises(FaceclsError, match="expected 'other'"):
        evaluate_variant("other", root / "toy.pt", data, tta=False, threshold_method="robust",
                         metrics_path=tmp_path / "m.json", out_dir=tmp_path / "eval")
    record = torch.load(root / "toy.pt", weights_only=True)
    del record["out_of_fold"]
    torch.save(record, tmp_path / "old.pt")
    with pytest.raises(FaceclsError, match="old.pt: holds no out-of-fold scores"):
        evaluate_variant("toy", tmp_path / "old.pt", data, tta=False, threshold_method="robust",
                         metrics_path=tmp_path / "m.json", out_dir=tmp_path / "eval")
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize(("setting", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_scoring_runs_in_the_precision_set_and_the_metrics_record_both(trained, tmp_path, setting, dtype):
    root, data = trained
    with conv_output_dtypes() as seen:
        m = evaluate_variant("toy", root / "toy.pt", data, tta=False, threshold_method="robust",
                             metrics_path=tmp_path / "m.json", out_dir=tmp_path / "eval", precision=setting)
    assert seen["eval"] == {dtype} and not seen["train"]
    _, info = load_model(root / "toy.pt")
    assert m["score_precision"] == setting and m["train_precision"] == info["summary"]["precision"]["train"]
    assert json.loads((tmp_path / "m.json").read_text())["score_precision"] == setting
