"""Scoring against a truth file, for archives that come with the answers (such as faces-sample).

Measuring only: nothing in the pipeline reads a truth file. Thresholds and the
choice of variant come from the out-of-fold scores of the labelled data, the
reported figures from its test part; this module tells afterwards how both
fared on the real answers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facecls.data.labels import read_labels
from facecls.errors import FaceclsError
from facecls.evaluation.rates import hter, recalls


def score_labels(predicted: np.ndarray, truth: np.ndarray) -> dict:
    r0, r1 = recalls(truth, predicted)
    return {"hter": hter(truth, predicted), "recall_0": r0, "recall_1": r1, "n": len(truth)}


def read_pair(predicted_path: Path, truth_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both label files, checked to label the same number of images."""
    predicted, truth = read_labels(predicted_path), read_labels(truth_path)
    if len(predicted) != len(truth):
        raise FaceclsError(f"{predicted_path}: {len(predicted)} lines but {truth_path} has {len(truth)}")
    if len(set(truth.tolist())) < 2:
        raise FaceclsError(f"{truth_path}: holds one class only, so the HTER is undefined")
    return predicted, truth


def variant_rows(truth: np.ndarray, labelled: list[dict]) -> list[dict]:
    """Each variant's labels (``facecls.predict.label_with_every_variant``) scored on the truth,
    beside its out-of-fold and test figures; rows in the order of the out-of-fold HTER, as the
    choice reads them."""
    rows = []
    for item in labelled:
        if len(item["labels"]) != len(truth):
            raise FaceclsError(f"truth file has {len(truth)} lines but the run labelled {len(item['labels'])} "
                               "val_img images")
        m = item["metrics"]
        rows.append({"variant": item["variant"], "chosen": item["chosen"], "oof_hter": m["oof_hter"],
                     "oof_hter_ci95": m["oof_hter_ci95"],
                     "test_hter": m["hter"], "test_hter_ci95": m["hter_ci95"], "threshold": m["threshold"],
                     "train_seconds": m.get("train_seconds"),
                     **{f"truth_{k}": v for k, v in score_labels(item["labels"], truth).items()}})
    return sorted(rows, key=lambda r: (r["oof_hter"], r["variant"]))


def rows_markdown(rows: list[dict]) -> str:
    lines = ["| variant | out-of-fold HTER [95 %] | test HTER [95 %] | threshold | truth HTER | truth inside the "
             "test interval | truth recall 0 / 1 | training time |",
             "|---|---|---|---|---|---|---|---|"]
    inside = 0
    for r in rows:
        name = f"{r['variant']} (chosen)" if r["chosen"] else r["variant"]
        low, high = r["test_hter_ci95"]
        within = low <= r["truth_hter"] <= high
        inside += within
        seconds = "" if r["train_seconds"] is None else f"{r['train_seconds']:.0f} s"
        oof_low, oof_high = r["oof_hter_ci95"]
        lines.append(f"| {name} | {r['oof_hter']:.4f} [{oof_low:.3f}–{oof_high:.3f}] | "
                     f"{r['test_hter']:.4f} [{low:.3f}–{high:.3f}] | "
                     f"{r['threshold']:.3f} | {r['truth_hter']:.4f} | {'yes' if within else 'no'} | "
                     f"{r['truth_recall_0']:.3f} / {r['truth_recall_1']:.3f} | {seconds} |")
    return "\n".join(lines) + (f"\n\nThe truth HTER falls inside the test interval for {inside} of "
                               f"{len(rows)} variants.\n")
