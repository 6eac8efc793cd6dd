"""Stage predict: label every val_img image with the chosen variant -> results/label_val.txt.

Also exports that model with its threshold as results/model.pt, for `facecls label`.
"""

from facecls.data.prepared import load_unlabelled
from facecls.device import device_setting, pick_device
from facecls.errors import fail_cleanly
from facecls.evaluation.evaluate import evaluate_settings
from facecls.evaluation.summary import chosen_variant, predict_variant, read_metrics, scored_names
from facecls.models.files import load_model, model_file, save_model
from facecls.params import load_params
from facecls.predict import label_images, write_label_file


@fail_cleanly
def main() -> None:
    params = load_params()
    _, tta = evaluate_settings(params)
    choice, device = predict_variant(params), pick_device(device_setting(params))
    metrics = read_metrics("results/metrics", scored_names(params))
    variant = chosen_variant(choice, metrics)
    threshold = metrics[variant]["threshold"]
    model, info = load_model(model_file(variant), expect_variant=variant)
    labels = label_images(model.to(device), load_unlabelled("data/prepared").images, threshold, tta=tta,
                          device=device)
    write_label_file("results/label_val.txt", labels)
    save_model("results/model.pt", model.cpu(), info["config"], threshold=threshold, tta=tta,
               holdout_metrics={k: metrics[variant][k] for k in ("hter", "recall_0", "recall_1", "auc")})
    print(f"predict: {variant} (held-out HTER {metrics[variant]['hter']:.4f}), threshold {threshold:.3f}, "
          f"tta {tta}: {len(labels)} lines in results/label_val.txt "
          f"(class 0: {int((labels == 0).sum())}, class 1: {int((labels == 1).sum())})")


if __name__ == "__main__":
    main()
