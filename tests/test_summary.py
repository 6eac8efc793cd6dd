"""The results of a run: the table, the few figures DVC compares, the variants within noise."""

from pathlib import Path

from facecls.evaluation.summary import compared_figures, noise_of_chosen, summary_markdown
from facecls.models.files import model_file


def metrics(tune_hter, test_hter, ci, weights="random"):
    return {"hter": test_hter, "hter_ci95": ci, "recall_0": 1 - test_hter, "recall_1": 1 - test_hter / 2,
            "hter_at_0_5": test_hter + 0.05, "threshold": 0.42, "auc": 0.9, "weights": weights,
            "train_seconds": 12.0, "tune_hter": tune_hter, "tune_hter_ci95": [tune_hter - 0.01, tune_hter + 0.01],
            "n_tune": 250, "n_tune_class_0": 26, "n_test": 250, "n_test_class_0": 27}


SCORED = {"a": metrics(0.30, 0.31, [0.25, 0.37]), "b": metrics(0.10, 0.12, [0.08, 0.16]),
          "c": metrics(0.20, 0.15, [0.11, 0.19], "random (imagenet unavailable)")}


def test_table_follows_the_tune_hter_shows_intervals_and_names_the_chosen():
    table = summary_markdown(SCORED, "best")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "variant" not in line]
    assert [r.split("|")[1].strip().strip("*") for r in rows] == ["b", "c", "a"]
    assert "| **b** | 0.1200 [0.080–0.160] |" in rows[0] and rows[0].endswith("| chosen |")
    assert rows[1].endswith("| within noise of the chosen |") and rows[2].endswith("|  |")
    assert "Chosen: **b**" in table and "250 faces, 27 with an accessory" in table
    assert "ImageNet weights were unavailable for c" in table
    assert "0.4200" not in table and "0.420" in table


def test_within_noise_means_overlapping_test_intervals():
    assert noise_of_chosen(SCORED, "b") == ["c"]
    assert noise_of_chosen(SCORED, "a") == []


def test_dvc_compares_few_flat_figures():
    figures = compared_figures(SCORED, "best")
    assert figures["chosen"] == "b" and figures["chosen_hter"] == 0.12
    assert figures["a"] == {"hter": 0.31, "hter_ci95": "0.250–0.370", "recall_0": 0.69, "recall_1": 0.845, "auc": 0.9}
    columns = 3 + sum(len(v) for v in figures.values() if isinstance(v, dict))
    assert columns == 3 + 5 * 3


def test_every_model_file_lives_in_models_the_ensemble_too():
    assert model_file("ensemble") == Path("models/ensemble.pt")
    assert model_file("simplecnn") == Path("models/simplecnn.pt")
