"""Stage evaluate@<variant>: the threshold from the variant's out-of-fold scores, its out-of-fold and
test figures with intervals, plot data and figures."""

import sys
from pathlib import Path

from facecls.data.prepared import load_labelled
from facecls.device import device_setting
from facecls.errors import fail_cleanly
from facecls.evaluation.evaluate import evaluate_settings, evaluate_variant
from facecls.models.precision import precision_setting
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    variant = sys.argv[1]
    params = load_params()
    method, tta = evaluate_settings(params)
    precision = precision_setting(params, variant)
    m = evaluate_variant(variant, Path(f"models/{variant}.pt"), load_labelled("data/prepared"), tta=tta,
                         threshold_method=method, metrics_path=Path(f"results/metrics/{variant}.json"),
                         out_dir=Path(f"results/eval/{variant}"), device=device_setting(params), precision=precision)
    singles = m["fold_model_test_hter"]
    print(f"evaluate@{variant}: out-of-fold HTER {m['oof_hter']:.4f} [{m['oof_hter_ci95'][0]:.3f}, "
          f"{m['oof_hter_ci95'][1]:.3f}] ({m['n_oof']} faces); test HTER {m['hter']:.4f} [{m['hter_ci95'][0]:.3f}, "
          f"{m['hter_ci95'][1]:.3f}] at threshold {m['threshold']:.3f}"
          + (f" (one fold model: {min(singles):.4f}-{max(singles):.4f})" if len(singles) > 1 else "")
          + f", AUC {m['auc']:.4f}, weights {m['weights']}, precision {m['score_precision']} ({precision})")


if __name__ == "__main__":
    main()
