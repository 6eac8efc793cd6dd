"""Choosing the decision threshold on the tune part: fixed 0.5, the raw HTER optimum, or
the robust rule (the optimum only where a bootstrap shows it beats 0.5 out of sample)."""

from __future__ import annotations

import numpy as np

from facecls.evaluation.rates import class_labels, finite_scores, hter, labels_at

METHODS = ("robust", "optimal", "0.5")  # evaluate.threshold


def _optimal_cut(values: np.ndarray, counts_0: np.ndarray, counts_1: np.ndarray) -> tuple[float, float]:
    """Best threshold given per-distinct-score class counts (``values`` ascending).

    Cut k predicts 0 for values[:k]. Integer arithmetic (HTER scaled by
    2 * n0 * n1) makes ties exact, so the tie-break towards 0.5 is reliable.
    Written by hand: scikit-learn's roc_curve sweeps the same cuts, but in float
    rates (ties inexact) and at the scores themselves, not the midpoints between
    them; the bootstrap below also runs this sweep hundreds of times on counts.
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
    labels = class_labels(y_true)
    return _optimal_cut(*_distinct_counts(labels, finite_scores(scores, labels.size)))


def _bootstrap_thresholds(labels, scores, seed: int, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Per stratified resample: its optimal threshold, and that threshold's
    out-of-bag HTER gain over 0.5 (NaN when the out-of-bag part lacks a class).
    """
    values, group = np.unique(scores, return_inverse=True)
    rows_0, rows_1 = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    rng = np.random.default_rng(seed)

    thresholds = np.empty(n_boot)
    gains = np.full(n_boot, np.nan)
    for b in range(n_boot):
        draw_0 = rows_0[rng.integers(0, rows_0.size, rows_0.size)]
        draw_1 = rows_1[rng.integers(0, rows_1.size, rows_1.size)]
        counts_0 = np.bincount(group[draw_0], minlength=values.size)
        counts_1 = np.bincount(group[draw_1], minlength=values.size)
        # The resample's own distinct scores, so its midpoints match what
        # hter_optimal_threshold would pick on it.
        present = (counts_0 + counts_1) > 0
        threshold, _ = _optimal_cut(values[present], counts_0[present], counts_1[present])
        thresholds[b] = threshold

        out_of_bag = np.ones(labels.size, dtype=bool)
        out_of_bag[draw_0] = out_of_bag[draw_1] = False
        held_labels, held_scores = labels[out_of_bag], scores[out_of_bag]
        if (held_labels == 0).any() and (held_labels == 1).any():
            gains[b] = hter(held_labels, labels_at(held_scores, 0.5)) - hter(
                held_labels, labels_at(held_scores, threshold))
    return thresholds, gains


def _robust_choice(labels, scores, seed: int, n_boot: int, hter_at_0_5: float) -> dict:
    thresholds, gains = _bootstrap_thresholds(labels, scores, seed, n_boot)
    median = float(np.median(thresholds))
    evaluated = gains[~np.isnan(gains)]
    min_evaluations = max(2, n_boot // 10)
    gain_mean = float(evaluated.mean()) if evaluated.size else float("nan")
    gain_std = float(evaluated.std(ddof=1)) if evaluated.size >= 2 else float("nan")
    hter_at_median = hter(labels, labels_at(scores, median))

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
    """Choose the decision threshold from the tune part's labels and scores.

    Methods:

    - ``"0.5"``: the fixed threshold 0.5.
    - ``"optimal"``: the raw HTER optimum on these data (hter_optimal_threshold).
    - ``"robust"``: the raw optimum of a small tune part chases noise and can
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
    if method not in METHODS:
        raise ValueError(
            f"threshold method {method!r} is not one of {', '.join(METHODS)}"
        )
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    labels = class_labels(y_true)
    values = finite_scores(scores, labels.size)
    optimal_threshold, optimal_hter = _optimal_cut(*_distinct_counts(labels, values))
    hter_at_0_5 = hter(labels, labels_at(values, 0.5))

    if method == "0.5":
        choice = {"threshold": 0.5, "reason": "fixed threshold requested"}
    elif method == "optimal":
        choice = {"threshold": optimal_threshold, "reason": "raw HTER optimum on these data"}
    else:
        choice = _robust_choice(labels, values, seed, n_boot, hter_at_0_5)

    return {
        "method": method,
        **choice,
        "hter_at_threshold": hter(labels, labels_at(values, choice["threshold"])),
        "hter_at_0_5": hter_at_0_5,
        "optimal_threshold": optimal_threshold,
        "optimal_hter": optimal_hter,
    }


