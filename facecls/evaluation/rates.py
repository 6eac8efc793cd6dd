"""HTER and the rates behind it, from labels and scores.

Conventions: labels are ints, 0 = accessory (the minority) and 1 = none;
``scores`` are the model's probability of label 1, and a face is predicted 1
when its score is >= the threshold (``labels_at``: the one place that rule
lives). The ROC treats label 1 as the positive class, so FPR = 1 - recall_0
and TPR = recall_1. Recalls, the confusion matrix, the ROC and its AUC come
from scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

CLASS_NAMES = ("0 accessory", "1 none")


def _labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return array.astype(np.int64)


def class_labels(y_true) -> np.ndarray:
    labels = _labels(y_true, "y_true")
    for label in (0, 1):
        if not (labels == label).any():
            raise ValueError(
                f"y_true has no samples of class {label}, so recall_{label} "
                "(and HTER) is undefined"
            )
    return labels


def finite_scores(scores, n: int) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like y_true, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("scores must be finite (found NaN or infinity)")
    return array


def _predictions(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    labels = class_labels(y_true)
    predicted = _labels(y_pred, "y_pred")
    if predicted.shape != labels.shape:
        raise ValueError(
            f"y_pred has {predicted.size} values but y_true has {labels.size}"
        )
    return labels, predicted


def labels_at(scores, threshold: float) -> np.ndarray:
    """Predicted labels: 1 where the score is at least the threshold."""
    return (np.asarray(scores) >= threshold).astype(np.uint8)


def confusion(y_true, y_pred) -> np.ndarray:
    """[[true0 pred0, true0 pred1], [true1 pred0, true1 pred1]]."""
    labels, predicted = _predictions(y_true, y_pred)
    return confusion_matrix(labels, predicted, labels=[0, 1])


def recalls(y_true, y_pred) -> tuple[float, float]:
    """Return (recall_0, recall_1): the fraction of each true class predicted as itself."""
    counts = confusion(y_true, y_pred)
    return float(counts[0, 0] / counts[0].sum()), float(counts[1, 1] / counts[1].sum())


def hter(y_true, y_pred) -> float:
    """Half-Total Error Rate: mean of the two per-class error rates (1 - balanced accuracy)."""
    recall_0, recall_1 = recalls(y_true, y_pred)
    return ((1.0 - recall_0) + (1.0 - recall_1)) / 2.0


def _equal_error_rate(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Where FPR meets FNR = 1 - TPR, interpolated along the ROC segment that crosses."""
    gap = fpr - (1.0 - tpr)  # rises from -1 at (0, 0) to +1 at (1, 1)
    i = int(np.argmax(gap >= 0))
    if gap[i] == 0 or i == 0:
        return float(fpr[i])
    fraction = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(fpr[i - 1] + fraction * (fpr[i] - fpr[i - 1]))


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fpr, tpr, thresholds = roc_curve(labels, scores, pos_label=1)
    # sklearn opens with an infinite threshold (nothing called 1); JSON has no
    # infinity, and the next float above the top score means the same thing.
    thresholds[~np.isfinite(thresholds)] = np.nextafter(scores.max(), np.inf)
    return fpr, tpr, thresholds


def classification_report(y_true, scores, threshold: float) -> dict:
    """Figures at ``threshold``, as plain JSON-serialisable numbers.

    ``auc`` is the ROC AUC of the scores for class 1; ``eer`` the equal error
    rate; ``confusion`` is [[true0 pred0, true0 pred1], [true1 pred0, true1 pred1]].
    """
    labels = class_labels(y_true)
    values = finite_scores(scores, labels.size)
    predicted = labels_at(values, threshold)
    counts = confusion(labels, predicted)
    recall_0, recall_1 = recalls(labels, predicted)
    fpr, tpr, _ = _roc(labels, values)
    return {
        "hter": hter(labels, predicted),
        "recall_0": recall_0,
        "recall_1": recall_1,
        "auc": float(roc_auc_score(labels, values)),
        "eer": _equal_error_rate(fpr, tpr),
        "confusion": counts.tolist(),
        "n": int(labels.size),
        "n_class_0": int(counts[0].sum()),
        "threshold": float(threshold),
    }


def roc_points(y_true, scores, max_points: int = 200) -> list[dict]:
    """ROC rows {fpr, tpr, threshold} for a DVC plot, evenly thinned to at most
    ``max_points`` but always keeping (0, 0) and (1, 1)."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 to keep both ends, got {max_points}")
    labels = class_labels(y_true)
    fpr, tpr, thresholds = _roc(labels, finite_scores(scores, labels.size))
    keep = np.unique(np.round(np.linspace(0, fpr.size - 1, min(max_points, fpr.size))).astype(int))
    return [
        {"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": float(thresholds[i])}
        for i in keep
    ]


def confusion_rows(y_true, y_pred) -> list[dict]:
    """One {actual, predicted} row per sample, with class names as the axis
    labels of DVC's ``confusion`` template."""
    labels = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    if predicted.shape != labels.shape:
        raise ValueError(f"y_pred has {predicted.size} values but y_true has {labels.size}")
    return [
        {"actual": CLASS_NAMES[a], "predicted": CLASS_NAMES[p]}
        for a, p in zip(labels.tolist(), predicted.tolist())
    ]


def most_confident_errors(y_true, scores, threshold: float, k: int) -> np.ndarray:
    """Indices of up to ``k`` misclassified samples, farthest from the threshold first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    labels = _labels(y_true, "y_true")
    values = finite_scores(scores, labels.size)
    wrong = np.flatnonzero(labels_at(values, threshold) != labels)
    # Stable sort keeps sample order among equally confident errors.
    return wrong[np.argsort(-np.abs(values[wrong] - threshold), kind="stable")][:k]


def hter_interval(y_true, y_pred, *, level: float = 0.95, n_boot: int = 10_000, seed: int = 0) -> list[float]:
    """[low, high]: the percentile interval of HTER over ``n_boot`` stratified bootstrap resamples.

    Stratified: each resample redraws, with replacement, as many faces of each class as the
    class holds, so both recalls stay defined. A class's error count in such a resample is
    Binomial(n_class, errors / n_class); drawing those counts is the same bootstrap, without
    materialising the resampled faces.
    """
    counts = confusion(y_true, y_pred)
    sizes = counts.sum(axis=1)
    error_rates = np.array([counts[0, 1], counts[1, 0]]) / sizes
    rng = np.random.default_rng(seed)
    draws = rng.binomial(sizes[:, None], error_rates[:, None], size=(2, n_boot)) / sizes[:, None]
    hters = draws.mean(axis=0)
    tail = (1 - level) / 2
    return [float(np.quantile(hters, tail)), float(np.quantile(hters, 1 - tail))]
