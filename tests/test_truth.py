"""Scoring label files against a truth file (`facecls score`)."""

import subprocess
import sys

import numpy as np
import pytest

from facecls.errors import FaceclsError
from facecls.evaluation.truth import read_pair, rows_markdown, score_labels


def write(path, labels):
    path.write_text("".join(f"{v}\n" for v in labels))
    return path


def test_score_is_the_hter_of_the_two_recalls():
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    predicted = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 0])  # recall 0 = 3/4, recall 1 = 5/6
    s = score_labels(predicted, truth)
    assert s["recall_0"] == pytest.approx(0.75) and s["recall_1"] == pytest.approx(5 / 6)
    assert s["hter"] == pytest.approx((0.25 + 1 / 6) / 2) and s["n"] == 10


def test_files_of_different_lengths_are_refused_naming_both(tmp_path):
    with pytest.raises(FaceclsError, match=r"pred.txt: 3 lines but .*truth.txt has 4"):
        read_pair(write(tmp_path / "pred.txt", [0, 1, 1]), write(tmp_path / "truth.txt", [0, 1, 1, 1]))


def test_a_truth_file_of_one_class_is_refused(tmp_path):
    with pytest.raises(FaceclsError, match="one class only"):
        read_pair(write(tmp_path / "pred.txt", [0, 1]), write(tmp_path / "truth.txt", [1, 1]))


def test_command_prints_the_hter_and_fails_cleanly_on_a_bad_file(tmp_path):
    write(tmp_path / "truth.txt", [0, 0, 1, 1])
    write(tmp_path / "pred.txt", [0, 1, 1, 1])
    ok = subprocess.run([sys.executable, "-m", "facecls.cli", "score", str(tmp_path / "truth.txt"), "--labels",
                         str(tmp_path / "pred.txt")], capture_output=True, text=True)
    assert ok.returncode == 0 and "HTER 0.2500 (recall 0 0.5000, recall 1 1.0000) on 4 faces" in ok.stdout
    (tmp_path / "bad.txt").write_text("0\nyes\n1\n1\n")
    bad = subprocess.run([sys.executable, "-m", "facecls.cli", "score", str(tmp_path / "truth.txt"), "--labels",
                          str(tmp_path / "bad.txt")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().endswith("bad.txt: line 2 is 'yes', expected 0 or 1")


def test_table_marks_the_chosen_variant_and_whether_the_truth_lies_in_the_test_interval():
    rows = [{"variant": "a", "chosen": True, "oof_hter": 0.1, "oof_hter_ci95": [0.08, 0.12], "test_hter": 0.11,
             "test_hter_ci95": [0.05, 0.15], "threshold": 0.5, "train_seconds": 12.3, "truth_hter": 0.12,
             "truth_recall_0": 0.8, "truth_recall_1": 0.96},
            {"variant": "b", "chosen": False, "oof_hter": 0.2, "oof_hter_ci95": [0.17, 0.23], "test_hter": 0.21,
             "test_hter_ci95": [0.15, 0.24], "threshold": 0.7, "train_seconds": None, "truth_hter": 0.25,
             "truth_recall_0": 0.5, "truth_recall_1": 1.0}]
    table = rows_markdown(rows).splitlines()
    assert table[2] == ("| a (chosen) | 0.1000 [0.080–0.120] | 0.1100 [0.050–0.150] | 0.500 | 0.1200 | yes | "
                        "0.800 / 0.960 | 12 s |")
    assert table[3].startswith("| b | 0.2000 [0.170–0.230] | 0.2100 [0.150–0.240] | 0.700 | 0.2500 | no |")
    assert table[-1] == "The truth HTER falls inside the test interval for 1 of 2 variants."
