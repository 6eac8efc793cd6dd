"""The results of a run: the table, the few figures DVC compares, the variants within noise."""

from pathlib import Path

from facecls.evaluation.summary import compared_figures, noise_of_chosen, summary_markdown
from facecls.models.files import model_file


def metrics(oof_hter, test_hter, ci, weights="random", oof_width=0.01, n_oof=2250):
    return {"hter": test_hter, "hter_ci95": ci, "recall_0": 1 - test_hter, "recall_1": 1 - test_hter / 2,
            "hter_at_0_5": test_hter + 0.05, "threshold": 0.42, "auc": 0.9, "weights": weights,
            "train_seconds": 12.0, "oof_hter": oof_hter, "oof_hter_ci95": [oof_hter - oof_width, oof_hter + oof_width],
            "n_oof": n_oof, "n_oof_class_0": 238, "folds_scored": 5 if n_oof == 2250 else 1,
            "fold_model_test_hter": [test_hter + 0.01, test_hter + 0.03], "n_test": 250, "n_test_class_0": 27}


SCORED = {"a": metrics(0.30, 0.31, [0.25, 0.37]), "b": metrics(0.10, 0.12, [0.08, 0.16], oof_width=0.03),
          "c": metrics(0.12, 0.15, [0.11, 0.19], "random (imagenet unavailable)", n_oof=450)}


def test_table_follows_the_oof_hter_shows_both_intervals_and_names_the_chosen():
    table = summary_markdown(SCORED, "best")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split("|")[1].strip().strip("*") for r in rows] == ["b", "c", "a"]
    assert "| **b** | 0.1000 [0.070–0.130] | 0.1200 [0.080–0.160] |" in rows[0] and rows[0].endswith("| chosen |")
    assert "| 5 | 0.1300–0.1500 |" in rows[0], "fold models, and one fold model's test HTER beside the mean's"
    assert rows[1].endswith("| within noise of the chosen |") and rows[2].endswith("|  |")
    assert "Chosen: **b**" in table and "250 faces, 27 with an accessory" in table and "2,250 scored" in table
    assert "scored out of fold on fewer faces (reported, never chosen): c" in table
    assert "ImageNet weights were unavailable for c" in table
    assert "0.4200" not in table and "0.420" in table


def test_a_test_part_of_few_accessory_faces_is_called_noise():
    faces_dev = {v: {**m, "n_test_class_0": 64} for v, m in SCORED.items()}
    assert "Few faces to score" not in summary_markdown(faces_dev, "best")
    demo = {v: {**m, "n_test_class_0": 9} for v, m in SCORED.items()}
    table = summary_markdown(demo, "best")
    assert "one of the test part's 9 faces with an accessory moves its HTER by 0.056" in table
    assert "the test figures are noise" in table


def test_within_noise_means_overlapping_out_of_fold_intervals():
    assert noise_of_chosen(SCORED, "b") == ["c"]
    assert noise_of_chosen(SCORED, "a") == []
    assert noise_of_chosen(SCORED, "b", key="hter_ci95") == ["c"]


def test_dvc_compares_few_flat_figures():
    figures = compared_figures(SCORED, "best")
    assert figures["chosen"] == "b" and figures["chosen_hter"] == 0.12
    assert figures["a"] == {"hter": 0.31, "hter_ci95": "0.250–0.370", "oof_hter": 0.3, "oof_hter_ci95": "0.290–0.310"}
    columns = 3 + sum(len(v) for v in figures.values() if isinstance(v, dict))
    assert columns == 3 + 4 * 3


def test_every_model_file_lives_in_models_the_ensemble_too():
    assert model_file("ensemble") == Path("models/ensemble.pt")
    assert model_file("simplecnn") == Path("models/simplecnn.pt")
