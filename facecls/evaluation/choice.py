"""Which variant predict applies: ``predict.variant``, or with ``best`` the lowest out-of-fold
HTER (each fold's faces labelled at a threshold chosen on the other folds) among the names scored
out of fold on every train face, made on the train part's out-of-fold scores only: the test
figures are reported, never chosen on.

Out-of-fold scores rest on every train face (5,400 on faces-dev) where a tune part held a few
hundred; the figure is a single fold model's, while the variant delivers the mean of them, but it
is the same recipe on every face. A row trained on fewer folds (``fold_models``) is scored on
fewer faces, so its figure does not compare like with like: it is reported, not chosen.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from facecls.errors import FaceclsError, read_stage_json
from facecls.models.ensemble import ensemble_names
from facecls.params import check, get

BEST = "best"


def read_metrics(metrics_dir: str | Path, variants: list[str], ensembles: Iterable[str] = ()) -> dict[str, dict]:
    """Each name's results/metrics file; ``ensembles``, the names written by an ensemble@ stage."""
    metrics_dir = Path(metrics_dir)
    found = {}
    for variant in variants:
        path = metrics_dir / f"{variant}.json"
        stage = f"ensemble@{variant}" if variant in ensembles else f"evaluate@{variant}"
        found[variant] = read_stage_json(path, f"dvc repro {stage}")
        for key in ("hter", "oof_hter"):
            if not isinstance(found[variant].get(key), (int, float)):
                raise FaceclsError(f"{path}: no numeric {key!r} (written by an older evaluate stage: dvc repro)")
    return found


def read_scored(metrics_dir: str | Path, params: dict) -> dict[str, dict]:
    """The metrics of every name params.yaml scores (read_metrics over scored_names)."""
    return read_metrics(metrics_dir, scored_names(params), ensemble_names(params))


def scored_names(params: dict) -> list[str]:
    """Every name with a results/metrics/<name>.json: the variants, then the ensembles."""
    return list(params["variants"]) + ensemble_names(params)


def predict_variant(params: dict, source: str = "params.yaml") -> str:
    """``predict.variant``, checked: ``best`` or a scored name."""
    chosen = get(params, "predict.variant", source)
    scored = scored_names(params)
    check(isinstance(chosen, str) and (chosen == BEST or chosen in scored), source, "predict.variant",
          f"'{BEST}' or one of {', '.join(scored)}", chosen)
    return chosen


def by_oof_hter(metrics: dict[str, dict]) -> list[str]:
    """Names from the lowest out-of-fold HTER; ties go to the name first in order."""
    return sorted(metrics, key=lambda v: (metrics[v]["oof_hter"], v))


def best_variant(metrics: dict[str, dict]) -> str:
    """The rule of the module docstring: the lowest out-of-fold HTER among the names scored on the
    most faces (every train face, unless no name trained every fold)."""
    most = max(m.get("n_oof", 0) for m in metrics.values())
    return next(v for v in by_oof_hter(metrics) if metrics[v].get("n_oof", 0) == most)


def chosen_variant(choice: str, metrics: dict[str, dict]) -> str:
    """What predict applies: ``choice`` (``predict.variant``), or the rule's pick for ``best``."""
    return best_variant(metrics) if choice == BEST else choice
