"""Stage refit: with predict.refit, train the chosen variant again on more of the labelled faces,
for the epochs early stopping chose (true: every labelled face; except_test: train + tune, and its
test figures, at the chosen variant's tune threshold, come out as any variant's do).

Writes results/refit/: summary.json always; model.pt when it refits, which predict then applies;
test_scores.csv with except_test (what `facecls grid` pairs as the scored name "refit").
"""

from facecls.atomic import atomic_dir, write_json
from facecls.data.prepared import load_labelled
from facecls.device import device_setting
from facecls.errors import fail_cleanly
from facecls.evaluation.choice import chosen_variant, predict_variant, read_metrics, scored_names
from facecls.evaluation.evaluate import evaluate_settings, test_figures
from facecls.evaluation.pairing import TEST_SCORES
from facecls.models.files import save_model
from facecls.models.precision import precision_setting
from facecls.params import load_params
from facecls.refit import REFIT_DIR, refit, refit_setting


@fail_cleanly
def main() -> None:
    params = load_params()
    which = refit_setting(params)
    _, tta = evaluate_settings(params)
    with atomic_dir(REFIT_DIR) as tmp:
        if not which:
            write_json(tmp / "summary.json", {"refit": False})
            print("refit: off (predict.refit false)")
            return
        metrics = read_metrics("results/metrics", scored_names(params))
        variant = chosen_variant(predict_variant(params), metrics)
        data = load_labelled("data/prepared")
        model, info = refit(params, variant, data, which, out_dir=tmp)
        save_model(tmp / "model.pt", model.cpu(), info["config"], history=info.get("history", []),
                   summary=info["summary"])
        summary = {"refit": which, "variant": variant, "threshold": metrics[variant]["threshold"],
                   "train_cpu_seconds": info["summary"].get("train_cpu_seconds"),
                   "train_seconds": info["summary"].get("train_seconds")}
        if which == "except_test":
            summary.update(test_figures(model, info, data, metrics[variant]["threshold"], tta=tta,
                                        scores_path=tmp / TEST_SCORES, device=device_setting(params),
                                        precision=precision_setting(params, variant)))
        write_json(tmp / "summary.json", summary)
    figure = f", test HTER {summary['hter']:.4f} [{summary['hter_ci95'][0]:.3f}, {summary['hter_ci95'][1]:.3f}]" \
        if which == "except_test" else " (no test figure: the test part trained it)"
    print(f"refit: {variant} on {'train + tune' if which == 'except_test' else 'every labelled face'}{figure}")


if __name__ == "__main__":
    main()
