"""Stage ensemble: average the probabilities of the variants in ensemble.members.

Writes models/ensemble.pt (one model file, loadable like any variant's) and
results/metrics/ensemble.json with the same keys as evaluate@<variant>, its
threshold chosen on the held-out part the same way. The members are fixed in
params.yaml, not picked on that held-out part, so its held-out HTER is honest.
The command line names the members whose model files dvc.yaml tracks.
"""

import sys
from pathlib import Path

from facecls.data.prepared import load_labelled
from facecls.device import device_setting
from facecls.errors import fail_cleanly
from facecls.evaluation.evaluate import evaluate_model, evaluate_settings
from facecls.models.ensemble import NAME, ensemble_members
from facecls.models.files import load_ensemble, model_file, save_ensemble
from facecls.models.precision import precision_setting
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    params = load_params()
    members = ensemble_members(params, tracked=sys.argv[1:])
    method, tta = evaluate_settings(params)
    precision = precision_setting(params, NAME)
    model, info = load_ensemble(members)
    save_ensemble(model_file(NAME), model, info)
    m = evaluate_model(NAME, model, info, load_labelled("data/prepared"), tta=tta, threshold_method=method,
                       metrics_path=Path(f"results/metrics/{NAME}.json"), out_dir=Path(f"results/eval/{NAME}"),
                       device=device_setting(params), precision=precision)
    print(f"{NAME} of {', '.join(members)}: HTER {m['hter']:.4f} at threshold {m['threshold']:.3f} "
          f"(HTER {m['hter_at_0_5']:.4f} at 0.5), recall 0 {m['recall_0']:.4f}, recall 1 {m['recall_1']:.4f}, "
          f"AUC {m['auc']:.4f}, precision {m['score_precision']} ({precision})")


if __name__ == "__main__":
    main()
