"""Stage ensemble: average the probabilities of the variants in ensemble.members.

Writes results/ensemble.pt (one model file, loadable like any variant's) and
results/metrics/ensemble.json with the same keys as evaluate@<variant>, its
threshold chosen on the held-out part the same way. The members are fixed in
params.yaml, not picked on that held-out part, so its held-out HTER is honest.
"""

from pathlib import Path

from facecls.data import load_labelled
from facecls.ensemble import MODEL_PATH, NAME, combine, ensemble_members, save_ensemble
from facecls.errors import fail_cleanly
from facecls.evaluation import evaluate_model
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    params = load_params()
    members = ensemble_members(params)
    model, info = combine(members, "models")
    save_ensemble(MODEL_PATH, model, info)
    m = evaluate_model(NAME, model, info, load_labelled("data/prepared"), tta=params["predict"]["tta"],
                       threshold_method=str(params["evaluate"]["threshold"]),
                       metrics_path=Path(f"results/metrics/{NAME}.json"), out_dir=Path(f"results/eval/{NAME}"),
                       device=params["train"]["device"])
    print(f"{NAME} of {', '.join(members)}: HTER {m['hter']:.4f} at threshold {m['threshold']:.3f} "
          f"(HTER {m['hter_at_0_5']:.4f} at 0.5), recall 0 {m['recall_0']:.4f}, recall 1 {m['recall_1']:.4f}, "
          f"AUC {m['auc']:.4f}")


if __name__ == "__main__":
    main()
