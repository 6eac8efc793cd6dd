"""Two recipes compared on the same faces: their out-of-fold predictions (every train face, 5,400
on faces-dev) or their test parts, over one or more replicates (test folds, training seeds): each
one's mean HTER, and the mean difference with a paired 95 % bootstrap interval.

One test part of faces-dev holds 64 faces with an accessory: one HTER on it moves by about +-0.03
by chance, more than most changes are worth; out of fold there are 581. Pairing takes more chance
out: both recipes are scored on the very same faces, so the bootstrap resamples faces (within each
replicate and class, as the HTER weighs the classes) and recomputes both recipes' errors on the same
resample. What is left is the noise of their disagreements, a fraction of either one's. Not the
noise of training itself (two seeds of one recipe differ by about 0.01): replicate over seeds for that.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from facecls.errors import FaceclsError

TEST_SCORES = "test_scores.csv"  # results/eval/<name>/: one line per test face, written by evaluate
OOF_SCORES = "oof_scores.csv"  # and one per train face, scored out of fold, labelled at its fold's threshold


@dataclass(frozen=True)
class ScoredFaces:
    """One scored name's faces in one experiment (its out-of-fold or its test faces): rows of the
    prepared set, labels, predictions."""

    rows: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray

    @property
    def hter(self) -> float:
        return float(np.mean([np.mean(self.predicted[self.labels == c] != c) for c in (0, 1)]))


def read_scored_faces(text: str, source: str) -> ScoredFaces:
    """A ``test_scores.csv`` or ``oof_scores.csv`` (as written by the evaluate stage), checked."""
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
        parsed = np.array([(int(r["row"]), int(r["label"]), int(r["predicted"])) for r in rows], dtype=np.int64)
    except (KeyError, TypeError, ValueError):
        raise FaceclsError(f"{source}: not a scores file (columns row, label, predicted)") from None
    if parsed.size == 0 or not np.isin(parsed[:, 1:], (0, 1)).all() or set(parsed[:, 1]) != {0, 1}:
        raise FaceclsError(f"{source}: needs 0/1 labels and predictions, with both classes among the labels")
    order = np.argsort(parsed[:, 0])
    return ScoredFaces(parsed[order, 0], parsed[order, 1], parsed[order, 2])


def paired_difference(candidate: dict[int, ScoredFaces], baseline: dict[int, ScoredFaces], *, n_boot: int = 10_000,
                      seed: int = 0) -> dict:
    """Candidate minus baseline over the replicates both have: mean HTERs, the difference and its
    paired 95 % interval. ``candidate`` and ``baseline`` map a replicate to its scored faces, which
    must be the same faces with the same labels in both (else they cannot be paired)."""
    replicates = sorted(set(candidate) & set(baseline))
    if not replicates:
        raise FaceclsError("no replicate in common: nothing to pair")
    rng = np.random.default_rng(seed)
    total = np.zeros(n_boot)
    for replicate in replicates:
        c, b = candidate[replicate], baseline[replicate]
        if not (np.array_equal(c.rows, b.rows) and np.array_equal(c.labels, b.labels)):
            raise FaceclsError(f"replicate {replicate}: the two recipes were scored on different faces "
                               "(another split or archive): they cannot be paired")
        for cls in (0, 1):
            mine = c.labels == cls
            # +1 where only the candidate errs, -1 where only the baseline does: the class's share of
            # the HTER difference is half the mean of this over the class's faces.
            delta = (c.predicted[mine] != cls).astype(np.int8) - (b.predicted[mine] != cls).astype(np.int8)
            # Resampling n faces with replacement draws the counts of +1, -1 and 0 from a multinomial:
            # the same bootstrap in memory independent of n (90,000 faces out of fold at full size).
            shares = [np.mean(delta == 1), np.mean(delta == -1)]
            counts = rng.multinomial(delta.size, [*shares, 1 - sum(shares)], size=n_boot)
            total += (counts[:, 0] - counts[:, 1]) / delta.size / 2
    total /= len(replicates)
    hter_c = float(np.mean([candidate[r].hter for r in replicates]))
    hter_b = float(np.mean([baseline[r].hter for r in replicates]))
    low, high = np.percentile(total, [2.5, 97.5])
    return {"replicates": replicates, "hter": hter_c, "baseline_hter": hter_b, "difference": hter_c - hter_b,
            "ci95": [float(low), float(high)],
            "per_replicate": [[r, candidate[r].hter, baseline[r].hter] for r in replicates]}


def verdict(ci95: list[float]) -> str:
    """How to read a paired difference: better or worse beyond noise, or within it."""
    if ci95[1] < 0:
        return "better"
    if ci95[0] > 0:
        return "worse"
    return "within noise"
