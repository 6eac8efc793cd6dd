"""Stage evaluate@<variant>: held-out metrics, threshold, plot data and figures for one variant."""

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
    print(f"evaluate@{variant}: HTER {m['hter']:.4f} at threshold {m['threshold']:.3f} "
          f"(HTER {m['hter_at_0_5']:.4f} at 0.5), recall 0 {m['recall_0']:.4f}, recall 1 {m['recall_1']:.4f}, "
          f"AUC {m['auc']:.4f}, weights {m['weights']}, precision {m['score_precision']} ({precision})")


if __name__ == "__main__":
    main()
