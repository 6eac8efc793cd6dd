"""Stage predict: label every val_img image with the chosen variant -> results/label_val.txt.

The chosen variant's model is the mean of its fold models (every train face trained one of
them); its out-of-fold threshold applies. Also exports that model, with the threshold, as
results/model.pt, for `facecls label`.
"""

from facecls.data.prepared import load_unlabelled
from facecls.device import device_setting, pick_device
from facecls.errors import fail_cleanly
from facecls.evaluation.choice import chosen_variant, predict_variant, read_scored
from facecls.evaluation.evaluate import evaluate_settings
from facecls.models.files import load_model, model_file, save_model
from facecls.models.precision import precision_setting, scoring_precision
from facecls.params import load_params
from facecls.predict import label_images, write_label_file


@fail_cleanly
def main() -> None:
    params = load_params()
    _, tta = evaluate_settings(params)
    choice, device = predict_variant(params), pick_device(device_setting(params))
    metrics = read_scored("results/metrics", params)
    variant = chosen_variant(choice, metrics)
    m, precision = metrics[variant], precision_setting(params, variant)
    model, info = load_model(model_file(variant), expect_variant=variant)
    score_precision = scoring_precision(precision, info["config"], device)
    labels = label_images(model.to(device), load_unlabelled("data/prepared").images, m["threshold"], tta=tta,
                          device=device, precision=score_precision)
    write_label_file("results/label_val.txt", labels)
    # The knob, not what it resolved to here: `facecls label` resolves it again on its own machine.
    save_model("results/model.pt", model.cpu(), {**info["config"], "precision": precision}, threshold=m["threshold"],
               tta=tta, score_precision=score_precision,
               test_metrics={k: m[k] for k in ("hter", "hter_ci95", "recall_0", "recall_1", "auc", "oof_hter",
                                               "oof_hter_ci95")})
    print(f"predict: {variant} (test HTER {m['hter']:.4f} [{m['hter_ci95'][0]:.3f}, {m['hter_ci95'][1]:.3f}], "
          f"out of fold {m['oof_hter']:.4f}), threshold {m['threshold']:.3f}, tta {tta}, "
          f"precision {score_precision} ({precision}): "
          f"{len(labels)} lines in results/label_val.txt (class 0: {int((labels == 0).sum())}, "
          f"class 1: {int((labels == 1).sum())})")


if __name__ == "__main__":
    main()
