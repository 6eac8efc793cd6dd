"""The faces whose given label their out-of-sample score contradicts, by cleanlab's confident
learning (``cleanlab.filter.find_label_issues``): per class it estimates how often a label is
wrong from the scores' own confident joint, flags that many faces, and ranks them by how little
the model believes the given label (``self_confidence``) or by the margin between the two classes
(``normalized_margin``). A well-kept implementation of a published method (Northcutt et al., 2021)
beats ours."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from facecls.data.prepared import LabelledSet
from facecls.data.split import PARTS, TEST, TRAIN


def rank_issues(labels: np.ndarray, scores: np.ndarray, part: np.ndarray, filter_by: str,
                rank_by: str) -> np.ndarray:
    """Indices of the flagged faces, most suspect first.

    The test part is judged on its own: confident learning sets its per-class thresholds from the
    faces it is given, so test labels pooled with the others would shape which train labels are
    flagged, and through train.label_issues reach training. Train and tune are judged together.
    """
    from cleanlab.filter import find_label_issues  # imports pandas and more: only when auditing
    from cleanlab.rank import get_label_quality_scores

    probabilities = np.stack([1 - scores, scores], axis=1).astype(np.float64)
    labels = labels.astype(np.int64)
    flagged = []
    for rows in (np.flatnonzero(part != TEST), np.flatnonzero(part == TEST)):
        if min(int((labels[rows] == c).sum()) for c in (0, 1)) < 2:
            continue  # too few of a class for its thresholds: nothing to judge by
        found = find_label_issues(labels[rows], probabilities[rows], filter_by=filter_by, n_jobs=1)
        flagged.append(rows[found])
    flagged = np.concatenate(flagged) if flagged else np.zeros(0, dtype=np.int64)
    quality = get_label_quality_scores(labels, probabilities, method=rank_by)
    return flagged[np.argsort(quality[flagged], kind="stable")]


def issue_rows(data: LabelledSet, scores: np.ndarray, ranked: np.ndarray) -> list[dict]:
    """The label-issues file's lines (facecls.data.label_issues.COLUMNS)."""
    files = data.files or [""] * len(data.labels)
    return [{"rank": rank, "file": files[i], "row": int(i), "part": PARTS[data.part[i]], "label": int(data.labels[i]),
             "score": f"{scores[i]:.4f}"} for rank, i in enumerate(ranked.tolist(), start=1)]


def audit_summary(data: LabelledSet, scores: np.ndarray, ranked: np.ndarray, cpu_seconds: float) -> dict:
    """Counts for results/audit/summary.json (DVC metrics; the settings behind them are params already)."""
    flagged_part = data.part[ranked]
    return {
        "enabled": True, "faces": int(len(data.labels)), "flagged": int(ranked.size),
        **{f"flagged_{PARTS[code]}": int((flagged_part == code).sum()) for code in (TRAIN, TEST)},
        **{f"flagged_given_{c}": int((data.labels[ranked] == c).sum()) for c in (0, 1)},
        # How well the audit's models separate the classes: flags from weak models mean little.
        "out_of_sample_auc": round(float(roc_auc_score(data.labels, scores)), 4),
        "cpu_seconds": round(cpu_seconds, 1),
    }


def captions(data: LabelledSet, scores: np.ndarray, shown: np.ndarray) -> list[str]:
    files = data.files or [str(i) for i in range(len(data.labels))]
    return [f"{files[i]} ({PARTS[data.part[i]]})\ngiven {data.labels[i]}, score {scores[i]:.2f}" for i in shown]
