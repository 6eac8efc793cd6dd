import json

import pytest

from facecls.errors import FaceclsError
from facecls.evaluation.summary import best_variant, chosen_variant, read_metrics, summary_markdown
from facecls.models.files import model_file


def metrics(hter, weights="random"):
    return {"hter": hter, "recall_0": 1 - hter, "recall_1": 1 - hter, "hter_at_0_5": hter + 0.05,
            "threshold": 0.42, "auc": 0.9, "weights": weights, "train_seconds": 12.0, "n_holdout": 100}


def test_table_is_sorted_by_hter_and_names_the_best():
    table = summary_markdown({"a": metrics(0.3), "b": metrics(0.1), "c": metrics(0.2, "random (imagenet unavailable)")})
    rows = [line for line in table.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split("|")[1].strip().strip("*") for r in rows] == ["b", "c", "a"]
    assert "Best variant: **b**" in table
    assert "ImageNet weights were unavailable for c" in table
    assert "0.4200" not in table and "0.420" in table


def test_ties_go_to_the_first_name():
    assert best_variant({"z": metrics(0.1), "a": metrics(0.1)}) == "a"


def test_predict_applies_the_named_variant_or_the_best():
    scored = {"a": metrics(0.2), "ensemble": metrics(0.1)}
    assert chosen_variant("best", scored) == "ensemble"
    assert chosen_variant("a", scored) == "a"


def test_every_model_file_lives_in_models_the_ensemble_too():
    assert model_file("ensemble") == "models/ensemble.pt"
    assert model_file("simplecnn") == "models/simplecnn.pt"


def test_missing_or_broken_metrics_file_is_named(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(metrics(0.1)))
    with pytest.raises(FaceclsError, match="b.json: not found"):
        read_metrics(tmp_path, ["a", "b"])
    (tmp_path / "b.json").write_text("{oops")
    with pytest.raises(FaceclsError, match="b.json: not valid JSON"):
        read_metrics(tmp_path, ["a", "b"])
