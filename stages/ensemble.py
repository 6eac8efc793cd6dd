"""Stage ensemble@<name>: average the probabilities of the variants in ensembles.<name>.

Writes models/<name>.pt (one model file, loadable like any variant's, with the mean of its
members' out-of-fold scores) and results/metrics/<name>.json with the same keys as
evaluate@<variant>, its threshold chosen on those out-of-fold scores the same way. The members
are fixed in params.yaml, not picked on any scored faces, so its figures are honest.
The command line names the ensemble, then the members whose model files dvc.yaml tracks.
"""

import sys
from pathlib import Path

from facecls.data.prepared import load_labelled
from facecls.device import device_setting
from facecls.errors import FaceclsError, fail_cleanly
from facecls.evaluation.evaluate import evaluate_model, evaluate_settings
from facecls.evaluation.out_of_fold import mean_out_of_fold, read_out_of_fold
from facecls.models.ensemble import ensemble_members
from facecls.models.files import load_ensemble, model_file, save_ensemble
from facecls.models.precision import precision_setting
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    params = load_params()
    if len(sys.argv) < 2:
        raise FaceclsError("usage: python stages/ensemble.py NAME MEMBER... (dvc.yaml passes them)")
    name = sys.argv[1]
    method, tta = evaluate_settings(params)
    precision = precision_setting(params, name)
    members = ensemble_members(params, name, tracked=sys.argv[2:])
    data = load_labelled("data/prepared")
    model, info = load_ensemble(name, members)
    oof = mean_out_of_fold([read_out_of_fold(i, len(data.labels), str(model_file(m)))
                            for m, i in zip(members, info["members_info"])], members)
    save_ensemble(model_file(name), model, info, out_of_fold=oof.record())
    m = evaluate_model(name, model, info, data, oof, tta=tta, threshold_method=method,
                       metrics_path=Path(f"results/metrics/{name}.json"), out_dir=Path(f"results/eval/{name}"),
                       device=device_setting(params), precision=precision)
    print(f"{name} of {', '.join(members)}: out-of-fold HTER {m['oof_hter']:.4f}, test HTER {m['hter']:.4f} "
          f"[{m['hter_ci95'][0]:.3f}, {m['hter_ci95'][1]:.3f}] at threshold {m['threshold']:.3f}, "
          f"AUC {m['auc']:.4f}, precision {m['score_precision']} ({precision})")


if __name__ == "__main__":
    main()
