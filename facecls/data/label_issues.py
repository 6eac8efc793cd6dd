"""The labels the audit stage flags as likely wrong (``results/audit/label_issues.csv``), and what
training does with them (``train.label_issues``): keep them as given, drop those faces, or flip
their labels. Only the train part is ever changed: tune and test keep their labels as given, so
the choices made on tune and the figures reported on test stay comparable with a run that kept
every label."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from facecls.atomic import write_text
from facecls.data.prepared import LabelledSet
from facecls.data.split import LEFT_OUT, TRAIN
from facecls.errors import FaceclsError

ISSUES_CSV = Path("results/audit/label_issues.csv")
# rank: 1 = most suspect; score: the out-of-sample P(label 1); part: train, tune or test.
COLUMNS = ("rank", "file", "row", "part", "label", "score")


def write_issues(path: str | Path, rows: list[dict]) -> None:
    """The flagged faces, most suspect first, one line each (``COLUMNS``)."""
    lines = [",".join(COLUMNS)] + [",".join(str(row[c]) for c in COLUMNS) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def read_issues(path: str | Path, data: LabelledSet) -> np.ndarray:
    """The rows the audit flagged, checked against ``data`` (the same faces and the given labels):
    an audit of other data must not drop or flip faces here."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise FaceclsError(f"{path}: not a label-issues file (columns {', '.join(COLUMNS)})")
            flagged = [(int(r["row"]), r["file"], int(r["label"])) for r in reader]
    except FileNotFoundError:
        raise FaceclsError(f"{path}: not found (run `dvc repro audit`)") from None
    except (ValueError, TypeError):
        raise FaceclsError(f"{path}: a row or label that is not a number") from None
    rows = np.array([row for row, _, _ in flagged], dtype=np.int64)
    for row, name, label in flagged:
        if not 0 <= row < len(data.labels) or (data.files and data.files[row] != name) or data.labels[row] != label:
            raise FaceclsError(f"{path}: row {row} ({name}, label {label}) is not that face of the prepared set "
                               "(the audit ran on other data: run `dvc repro audit`)")
    return rows


def apply_label_issues(data: LabelledSet, mode: str, path: str | Path = ISSUES_CSV) -> tuple[LabelledSet, int]:
    """``data`` with the flagged train-part faces kept, dropped or relabelled (``mode``), and how many
    faces that touched. ``keep`` reads nothing."""
    if mode == "keep":
        return data, 0
    rows = read_issues(path, data)
    rows = rows[data.part[rows] == TRAIN]
    if mode == "drop":
        part = data.part.copy()
        part[rows] = LEFT_OUT
        return LabelledSet(data.images, data.labels, part, data.files), len(rows)
    labels = data.labels.copy()
    labels[rows] = 1 - labels[rows]
    return LabelledSet(data.images, labels, data.part, data.files), len(rows)
