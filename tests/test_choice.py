"""Which variant predict applies: made on the out-of-fold figures only, never on the test ones."""

import json

import pytest

from facecls.errors import FaceclsError
from facecls.evaluation.choice import best_variant, chosen_variant, read_metrics, read_scored


def metrics(oof_hter, test_hter=0.2, seconds=10.0, n_oof=5400):
    return {"oof_hter": oof_hter, "hter": test_hter, "train_seconds": seconds, "n_oof": n_oof}


def test_the_lowest_out_of_fold_hter_is_chosen():
    assert best_variant({"a": metrics(0.10), "ensemble": metrics(0.16), "b": metrics(0.12)}) == "a"
    assert best_variant({"a": metrics(0.10), "ensemble": metrics(0.09)}) == "ensemble"


def test_a_row_scored_on_fewer_faces_is_reported_not_chosen():
    scored = {"a": metrics(0.10), "one_fold": metrics(0.05, n_oof=1080)}
    assert best_variant(scored) == "a"
    assert best_variant({"x": metrics(0.2, n_oof=1080), "y": metrics(0.1, n_oof=1080)}) == "y"


def test_the_test_figures_never_enter_the_choice():
    scored = {"a": metrics(0.10, test_hter=0.30), "b": metrics(0.20, test_hter=0.01)}
    assert best_variant(scored) == "a"
    scored["a"]["hter"], scored["b"]["hter"] = 0.01, 0.30
    assert best_variant(scored) == "a"


def test_ties_go_to_the_first_name():
    assert best_variant({"z": metrics(0.1), "a": metrics(0.1)}) == "a"


def test_predict_applies_the_named_variant_or_the_best():
    scored = {"a": metrics(0.2), "ensemble": metrics(0.1)}
    assert chosen_variant("best", scored) == "ensemble"
    assert chosen_variant("a", scored) == "a"


def test_missing_or_broken_metrics_file_is_named(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(metrics(0.1)))
    with pytest.raises(FaceclsError, match="b.json: not found"):
        read_metrics(tmp_path, ["a", "b"])
    (tmp_path / "b.json").write_text("{oops")
    with pytest.raises(FaceclsError, match="b.json: not valid JSON"):
        read_metrics(tmp_path, ["a", "b"])
    (tmp_path / "b.json").write_text(json.dumps({"hter": 0.1}))
    with pytest.raises(FaceclsError, match="b.json: no numeric 'oof_hter'"):
        read_metrics(tmp_path, ["a", "b"])


def test_the_scored_names_are_the_variants_then_the_ensembles_each_with_the_stage_that_writes_it(tmp_path):
    params = {"variants": {"a": {}, "b": {}}, "ensembles": {"pair": ["a", "b"]}}
    for name in ("a", "b"):
        (tmp_path / f"{name}.json").write_text(json.dumps(metrics(0.1)))
    with pytest.raises(FaceclsError, match=r"pair.json: not found.*dvc repro ensemble@pair"):
        read_scored(tmp_path, params)
    (tmp_path / "pair.json").write_text(json.dumps(metrics(0.05)))
    assert list(read_scored(tmp_path, params)) == ["a", "b", "pair"]
    assert list(read_scored(tmp_path, {**params, "ensembles": {}})) == ["a", "b"]
