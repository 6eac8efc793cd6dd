"""Stage predict: label every val_img image with the chosen variant -> results/label_val.txt.

Also exports that model with its threshold as results/model.pt, for `facecls label`.
"""

from facecls.checkpoint import load_model, save_model
from facecls.data import load_unlabelled
from facecls.device import pick_device
from facecls.errors import fail_cleanly
from facecls.params import load_params
from facecls.prediction import label_images, write_label_file
from facecls.report import chosen_variant, model_file, read_metrics, scored_names


@fail_cleanly
def main() -> None:
    params = load_params()
    metrics = read_metrics("results/metrics", scored_names(params))
    variant = chosen_variant(params, metrics)
    threshold, tta = metrics[variant]["threshold"], params["predict"]["tta"]
    model, info = load_model(model_file(variant), expect_variant=variant)
    device = pick_device(params["train"]["device"])
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
