"""Scoring: HTER, recalls, threshold choice, and report/plot data.

Conventions: labels are ints, 0 = accessory (the minority) and 1 = none;
``scores`` are the model's probability of label 1, and a face is predicted 1
when its score is >= the threshold. The ROC treats label 1 as the positive
class, so FPR = 1 - recall_0 and TPR = recall_1.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

CLASS_NAMES = ("0 accessory", "1 none")
THRESHOLD_METHODS = ("0.5", "optimal", "robust")


def _labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return array.astype(np.int64)


def _labels_with_both_classes(y_true) -> np.ndarray:
    labels = _labels(y_true, "y_true")
    for label in (0, 1):
        if not (labels == label).any():
            raise ValueError(
                f"y_true has no samples of class {label}, so recall_{label} "
                "(and HTER) is undefined"
            )
    return labels


def _scores(scores, n: int) -> np.ndarray:
    array = np.asarray(scores, dtype=np.float64)
    if array.shape != (n,):
        raise ValueError(f"scores must have shape ({n},) like y_true, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("scores must be finite (found NaN or infinity)")
    return array


def _predictions(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    labels = _labels_with_both_classes(y_true)
    predicted = _labels(y_pred, "y_pred")
    if predicted.shape != labels.shape:
        raise ValueError(
            f"y_pred has {predicted.size} values but y_true has {labels.size}"
        )
    return labels, predicted


def recalls(y_true, y_pred) -> tuple[float, float]:
    """Return (recall_0, recall_1): the fraction of each true class predicted as itself."""
    labels, predicted = _predictions(y_true, y_pred)
    recall_0 = float(np.mean(predicted[labels == 0] == 0))
    recall_1 = float(np.mean(predicted[labels == 1] == 1))
    return recall_0, recall_1


def hter(y_true, y_pred) -> float:
    """Half-Total Error Rate: mean of the two per-class error rates (1 - balanced accuracy)."""
    recall_0, recall_1 = recalls(y_true, y_pred)
    return ((1.0 - recall_0) + (1.0 - recall_1)) / 2.0


def _hter_of_class_scores(scores_0: np.ndarray, scores_1: np.ndarray, threshold: float) -> float:
    # Error of class 0 = called 1 (score >= t); error of class 1 = called 0.
    return 0.5 * (float(np.mean(scores_0 >= threshold)) + float(np.mean(scores_1 < threshold)))


def _optimal_cut(values: np.ndarray, counts_0: np.ndarray, counts_1: np.ndarray) -> tuple[float, float]:
    """Best threshold given per-distinct-score class counts (``values`` ascending).

    Cut k predicts 0 for values[:k]. Integer arithmetic (HTER scaled by
    2 * n0 * n1) makes ties exact, so the tie-break towards 0.5 is reliable.
    """
    n0, n1 = int(counts_0.sum()), int(counts_1.sum())
    below_0 = np.concatenate(([0], np.cumsum(counts_0)))
    below_1 = np.concatenate(([0], np.cumsum(counts_1)))
    scaled_hter = n0 * n1 - below_0 * n1 + below_1 * n0

    midpoints = (values[:-1] + values[1:]) / 2.0
    # Adjacent floats can round the midpoint down onto the lower value, which
    # would flip that value's prediction; the upper value is then the cut.
    midpoints = np.where(midpoints > values[:-1], midpoints, values[1:])
    thresholds = np.concatenate(([values[0]], midpoints, [np.nextafter(values[-1], np.inf)]))

    best = np.flatnonzero(scaled_hter == scaled_hter.min())
    chosen = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[chosen]), float(scaled_hter[chosen]) / (2.0 * n0 * n1)


def _distinct_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values, group = np.unique(scores, return_inverse=True)
    counts_0 = np.bincount(group[labels == 0], minlength=values.size)
    counts_1 = np.bincount(group[labels == 1], minlength=values.size)
    return values, counts_0, counts_1


def hter_optimal_threshold(y_true, scores) -> tuple[float, float]:
    """Return (threshold, hter) for the threshold minimising HTER on these data.

    Every distinct cut of the sorted scores is tried; the threshold is the
    midpoint between the adjacent distinct scores on either side of the cut
    (so unseen scores in the gap are split fairly). Among equally good cuts
    the one whose threshold is closest to 0.5 wins.
    """
    labels = _labels_with_both_classes(y_true)
    return _optimal_cut(*_distinct_counts(labels, _scores(scores, labels.size)))


def _bootstrap_thresholds(labels, scores, seed: int, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Per stratified resample: its optimal threshold, and that threshold's
    out-of-bag HTER gain over 0.5 (NaN when the out-of-bag part lacks a class).
    """
    values, group = np.unique(scores, return_inverse=True)
    scores_0, scores_1 = scores[labels == 0], scores[labels == 1]
    group_0, group_1 = group[labels == 0], group[labels == 1]
    n0, n1 = scores_0.size, scores_1.size
    rng = np.random.default_rng(seed)

    thresholds = np.empty(n_boot)
    gains = np.full(n_boot, np.nan)
    for b in range(n_boot):
        draw_0 = rng.integers(0, n0, n0)
        draw_1 = rng.integers(0, n1, n1)
        counts_0 = np.bincount(group_0[draw_0], minlength=values.size)
        counts_1 = np.bincount(group_1[draw_1], minlength=values.size)
        # The resample's own distinct scores, so its midpoints match what
        # hter_optimal_threshold would pick on it.
        present = (counts_0 + counts_1) > 0
        threshold, _ = _optimal_cut(values[present], counts_0[present], counts_1[present])
        thresholds[b] = threshold

        out_0 = np.ones(n0, dtype=bool)
        out_0[draw_0] = False
        out_1 = np.ones(n1, dtype=bool)
        out_1[draw_1] = False
        if out_0.any() and out_1.any():
            held_0, held_1 = scores_0[out_0], scores_1[out_1]
            gains[b] = _hter_of_class_scores(held_0, held_1, 0.5) - _hter_of_class_scores(
                held_0, held_1, threshold
            )
    return thresholds, gains


def _robust_choice(labels, scores, seed: int, n_boot: int, hter_at_0_5: float) -> dict:
    thresholds, gains = _bootstrap_thresholds(labels, scores, seed, n_boot)
    median = float(np.median(thresholds))
    evaluated = gains[~np.isnan(gains)]
    min_evaluations = max(2, n_boot // 10)
    gain_mean = float(evaluated.mean()) if evaluated.size else float("nan")
    gain_std = float(evaluated.std(ddof=1)) if evaluated.size >= 2 else float("nan")
    hter_at_median = _hter_of_class_scores(scores[labels == 0], scores[labels == 1], median)

    if evaluated.size < min_evaluations:
        threshold, reason = 0.5, (
            f"only {evaluated.size} of {n_boot} resamples left both classes out of bag "
            f"(need {min_evaluations}); too little data to trust a tuned threshold"
        )
    elif not gain_mean > gain_std:
        threshold, reason = 0.5, (
            f"out-of-bag HTER gain over 0.5 ({gain_mean:.4f} +/- {gain_std:.4f}) "
            "is within noise"
        )
    elif hter_at_median > hter_at_0_5:
        threshold, reason = 0.5, "the bootstrap median threshold does worse than 0.5 on these data"
    else:
        threshold, reason = median, (
            f"out-of-bag HTER gain over 0.5 ({gain_mean:.4f} +/- {gain_std:.4f}) "
            "exceeds its standard deviation"
        )
    return {
        "threshold": float(threshold),
        "reason": reason,
        "fell_back_to_0_5": threshold == 0.5 and median != 0.5,
        "bootstrap_median_threshold": median,
        "bootstrap_threshold_q25": float(np.quantile(thresholds, 0.25)),
        "bootstrap_threshold_q75": float(np.quantile(thresholds, 0.75)),
        # None rather than NaN: strict JSON (and DVC metrics) have no NaN.
        "oob_gain_mean": None if np.isnan(gain_mean) else gain_mean,
        "oob_gain_std": None if np.isnan(gain_std) else gain_std,
        "n_oob_evaluations": int(evaluated.size),
        "n_boot": int(n_boot),
        "seed": int(seed),
    }


def choose_threshold(y_true, scores, method: str = "robust", seed: int = 0, n_boot: int = 200) -> dict:
    """Choose the decision threshold from held-out labels and scores.

    Methods:

    - ``"0.5"``: the fixed threshold 0.5.
    - ``"optimal"``: the raw HTER optimum on these data (hter_optimal_threshold).
    - ``"robust"``: the raw optimum of a small held-out set chases noise and can
      generalise worse than 0.5 (more so after a class-weighted loss, whose
      scores are already balanced around 0.5). So: draw ``n_boot`` bootstrap
      resamples, stratified by class and seeded by ``seed``; in each, find the
      optimal threshold and measure its HTER gain over 0.5 on the faces left out
      of that resample (out of bag), i.e. the gain of tuning on unseen data.
      The candidate is the median of the resampled thresholds. It is kept only
      if the mean out-of-bag gain exceeds its standard deviation (a one-sigma
      rule; resamples whose out-of-bag part lacks a class are skipped, and at
      least max(2, n_boot // 10) must remain) and it does no worse than 0.5 on
      the full data; otherwise the threshold is 0.5. Deterministic for a seed.

    Returns a JSON-serialisable dict: ``threshold``, ``method``,
    ``hter_at_threshold`` and ``hter_at_0_5`` (on these data),
    ``optimal_threshold`` and ``optimal_hter`` (the raw optimum), ``reason``,
    and for ``"robust"`` the bootstrap figures behind the decision.
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"threshold method {method!r} is not one of {', '.join(THRESHOLD_METHODS)}"
        )
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    labels = _labels_with_both_classes(y_true)
    values = _scores(scores, labels.size)
    scores_0, scores_1 = values[labels == 0], values[labels == 1]
    optimal_threshold, optimal_hter = _optimal_cut(*_distinct_counts(labels, values))
    hter_at_0_5 = _hter_of_class_scores(scores_0, scores_1, 0.5)

    if method == "0.5":
        choice = {"threshold": 0.5, "reason": "fixed threshold requested"}
    elif method == "optimal":
        choice = {"threshold": optimal_threshold, "reason": "raw HTER optimum on these data"}
    else:
        choice = _robust_choice(labels, values, seed, n_boot, hter_at_0_5)

    return {
        "method": method,
        **choice,
        "hter_at_threshold": _hter_of_class_scores(scores_0, scores_1, choice["threshold"]),
        "hter_at_0_5": hter_at_0_5,
        "optimal_threshold": optimal_threshold,
        "optimal_hter": optimal_hter,
    }


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
    """Held-out figures at ``threshold``, as plain JSON-serialisable numbers.

    ``auc`` is the ROC AUC of the scores for class 1; ``eer`` the equal error
    rate; ``confusion`` is [[true0 pred0, true0 pred1], [true1 pred0, true1 pred1]].
    """
    labels = _labels_with_both_classes(y_true)
    values = _scores(scores, labels.size)
    predicted = (values >= threshold).astype(np.int64)
    recall_0, recall_1 = recalls(labels, predicted)
    fpr, tpr, _ = _roc(labels, values)
    confusion = np.bincount(2 * labels + predicted, minlength=4).reshape(2, 2)
    return {
        "hter": ((1.0 - recall_0) + (1.0 - recall_1)) / 2.0,
        "recall_0": recall_0,
        "recall_1": recall_1,
        "balanced_accuracy": (recall_0 + recall_1) / 2.0,
        "auc": float(roc_auc_score(labels, values)),
        "eer": _equal_error_rate(fpr, tpr),
        "confusion": confusion.tolist(),
        "n": int(labels.size),
        "n_class_0": int(confusion[0].sum()),
        "n_class_1": int(confusion[1].sum()),
        "threshold": float(threshold),
    }


def roc_points(y_true, scores, max_points: int = 200) -> list[dict]:
    """ROC rows {fpr, tpr, threshold} for a DVC plot, evenly thinned to at most
    ``max_points`` but always keeping (0, 0) and (1, 1)."""
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2 to keep both ends, got {max_points}")
    labels = _labels_with_both_classes(y_true)
    fpr, tpr, thresholds = _roc(labels, _scores(scores, labels.size))
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
    values = _scores(scores, labels.size)
    wrong = np.flatnonzero((values >= threshold).astype(np.int64) != labels)
    # Stable sort keeps sample order among equally confident errors.
    return wrong[np.argsort(-np.abs(values[wrong] - threshold), kind="stable")][:k]
