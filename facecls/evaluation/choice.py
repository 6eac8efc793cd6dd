"""Which variant predict applies: ``predict.variant``, or with ``best`` the rule below, made on
the tune part only (the test figures are reported, never chosen on).

The rule for ``best``: the lowest tune HTER; but a tune part is small (250 faces, 26 with an
accessory, on faces-sample) and its HTER moves by several hundredths by chance, so when the
ensemble's tune HTER lies inside the 95 % interval of the lowest one's ("within noise"), the
ensemble is taken. Measured by 5-fold cross-validation on faces-sample (README): this rule gave
test HTER 0.128 +/- 0.013 across folds, the lowest tune HTER alone 0.136 +/- 0.007, and the
cheapest variant within noise 0.149 +/- 0.025; averaging seeds is what steadies the ensemble.
"""

from __future__ import annotations

from pathlib import Path

from facecls.errors import FaceclsError, read_stage_json
from facecls.models.ensemble import NAME as ENSEMBLE
from facecls.params import check, get

BEST = "best"


def read_metrics(metrics_dir: str | Path, variants: list[str]) -> dict[str, dict]:
    metrics_dir = Path(metrics_dir)
    found = {}
    for variant in variants:
        path = metrics_dir / f"{variant}.json"
        stage = ENSEMBLE if variant == ENSEMBLE else f"evaluate@{variant}"
        found[variant] = read_stage_json(path, f"dvc repro {stage}")
        for key in ("hter", "tune_hter"):
            if not isinstance(found[variant].get(key), (int, float)):
                raise FaceclsError(f"{path}: no numeric {key!r} (written by an older evaluate stage: dvc repro)")
    return found


def scored_names(params: dict) -> list[str]:
    """Every name with a results/metrics/<name>.json: the variants, then the ensemble when configured."""
    return list(params["variants"]) + ([ENSEMBLE] if ENSEMBLE in params else [])


def predict_variant(params: dict, source: str = "params.yaml") -> str:
    """``predict.variant``, checked: ``best`` or a scored name."""
    chosen = get(params, "predict.variant", source)
    scored = scored_names(params)
    check(isinstance(chosen, str) and (chosen == BEST or chosen in scored), source, "predict.variant",
          f"'{BEST}' or one of {', '.join(scored)}", chosen)
    return chosen


def by_tune_hter(metrics: dict[str, dict]) -> list[str]:
    """Names from the lowest tune HTER; ties go to the name first in order."""
    return sorted(metrics, key=lambda v: (metrics[v]["tune_hter"], v))


def within_noise_on_tune(metrics: dict[str, dict]) -> list[str]:
    """The variants whose tune HTER lies inside the lowest one's 95 % interval, lowest first."""
    order = by_tune_hter(metrics)
    high = metrics[order[0]].get("tune_hter_ci95", [0.0, metrics[order[0]]["tune_hter"]])[1]
    return [v for v in order if metrics[v]["tune_hter"] <= high]


def best_variant(metrics: dict[str, dict]) -> str:
    """The rule of the module docstring: the ensemble when within noise of the lowest tune HTER,
    else the lowest."""
    close = within_noise_on_tune(metrics)
    return ENSEMBLE if ENSEMBLE in close else close[0]


def chosen_variant(choice: str, metrics: dict[str, dict]) -> str:
    """What predict applies: ``choice`` (``predict.variant``), or the rule's pick for ``best``."""
    return best_variant(metrics) if choice == BEST else choice
