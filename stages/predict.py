"""Stage predict: label every val_img image with the chosen variant -> results/label_val.txt.

With predict.refit, the refit stage's model of the chosen variant (trained again on more of the
labelled faces) labels them instead; either way the chosen variant's tune threshold applies. Also exports the model
that labelled val_img, with that threshold, as results/model.pt, for `facecls label`.
"""

from facecls.data.prepared import load_unlabelled
from facecls.device import device_setting, pick_device
from facecls.errors import fail_cleanly, read_stage_json
from facecls.evaluation.choice import chosen_variant, predict_variant, read_metrics, scored_names
from facecls.evaluation.evaluate import evaluate_settings
from facecls.models.files import load_model, model_file, save_model
from facecls.models.precision import precision_setting, scoring_precision
from facecls.params import load_params
from facecls.predict import label_images, write_label_file
from facecls.refit import REFIT_DIR, refit_setting


@fail_cleanly
def main() -> None:
    params = load_params()
    _, tta = evaluate_settings(params)
    choice, device, refitted = predict_variant(params), pick_device(device_setting(params)), refit_setting(params)
    metrics = read_metrics("results/metrics", scored_names(params))
    variant = chosen_variant(choice, metrics)
    m, precision = metrics[variant], precision_setting(params, variant)
    # A refit (the refit stage's) labels val_img at the chosen variant's tune threshold; with except_test its
    # own test figures are the ones to report, with true there are none (the chosen variant's stand in).
    model, info = load_model(REFIT_DIR / "model.pt" if refitted else model_file(variant), expect_variant=variant)
    if refitted == "except_test":
        m = {**m, **read_stage_json(REFIT_DIR / "summary.json", "dvc repro refit")}
    score_precision = scoring_precision(precision, info["config"], device)
    labels = label_images(model.to(device), load_unlabelled("data/prepared").images, m["threshold"], tta=tta,
                          device=device, precision=score_precision)
    write_label_file("results/label_val.txt", labels)
    # The knob, not what it resolved to here: `facecls label` resolves it again on its own machine.
    save_model("results/model.pt", model.cpu(), {**info["config"], "precision": precision}, threshold=m["threshold"],
               tta=tta, refit=refitted, score_precision=score_precision,
               test_metrics={k: m[k] for k in ("hter", "hter_ci95", "recall_0", "recall_1", "auc")})
    how = {True: " refitted on every labelled face", "except_test": " refitted on train + tune"}.get(refitted, "")
    print(f"predict: {variant}{how} (test HTER {m['hter']:.4f} "
          f"[{m['hter_ci95'][0]:.3f}, {m['hter_ci95'][1]:.3f}]), threshold {m['threshold']:.3f}, tta {tta}, "
          f"precision {score_precision} ({precision}): "
          f"{len(labels)} lines in results/label_val.txt (class 0: {int((labels == 0).sum())}, "
          f"class 1: {int((labels == 1).sum())})")


if __name__ == "__main__":
    main()
