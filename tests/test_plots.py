import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

from facecls.evaluation.plots import (
    plot_confident_errors,
    plot_confusion,
    plot_intervals,
    plot_roc,
    plot_training_curves,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path, written):
    assert written == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= 200
    # Atomic write: no temp file left beside it, and no figure left open.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert plt.get_fignums() == []


def history(epochs, tuned=True):
    return [{"epoch": epoch, "train_loss": 1 / epoch,
             **({"tune_loss": 1 / epoch + 0.1, "tune_hter": 0.3 / epoch + 0.01 * epoch} if tuned else {})}
            for epoch in range(1, epochs + 1)]


@pytest.mark.parametrize("epochs", [1, 12])
@pytest.mark.parametrize("tuned", [True, False])
def test_training_curves_of_several_fold_models(tmp_path, epochs, tuned):
    path = tmp_path / "nested" / "curves.png"
    assert_valid_png(path, plot_training_curves([history(epochs, tuned)] * 3, path, "training curves"))


def panels_and_legend(monkeypatch, histories, path) -> tuple[int, list[str]]:
    """The panels and legend entries of the training-curves figure, read just before it is saved."""
    import facecls.evaluation.plots as plots

    seen, save = {}, plots._save

    def capture(fig, target):
        seen["panels"] = len(fig.axes)
        seen["legend"] = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        return save(fig, target)

    monkeypatch.setattr(plots, "_save", capture)
    plot_training_curves(histories, path, "t")
    return seen["panels"], seen["legend"]


def test_the_tune_panel_shows_only_where_early_stopping_read_a_tune_part(tmp_path, monkeypatch):
    assert panels_and_legend(monkeypatch, [history(5), history(4)], tmp_path / "a.png") == (
        2, ["fold model 1", "fold model 2"])
    assert panels_and_legend(monkeypatch, [history(5, tuned=False)], tmp_path / "b.png") == (1, ["training loss"])


def test_training_curves_reject_missing_keys(tmp_path):
    with pytest.raises(ValueError, match="train_loss"):
        plot_training_curves([[{"epoch": 1, "tune_loss": 1.0}]], tmp_path / "c.png", "t")
    with pytest.raises(ValueError, match="empty"):
        plot_training_curves([[]], tmp_path / "c.png", "t")


def test_roc(tmp_path):
    path = tmp_path / "roc.png"
    written = plot_roc([0, 0.1, 0.3, 1], [0, 0.7, 0.9, 1], path, "held-out ROC", auc=0.9, eer=0.2,
                       operating_point={"fpr": 0.1, "tpr": 0.7, "threshold": 0.61})
    assert_valid_png(path, written)


def test_roc_without_extras(tmp_path):
    path = tmp_path / "roc.png"
    assert_valid_png(path, plot_roc([0, 1], [0, 1], path, "held-out ROC"))


def test_confusion(tmp_path):
    path = tmp_path / "confusion.png"
    assert_valid_png(path, plot_confusion([[200, 25], [100, 1675]], path, "confusion"))


def test_confusion_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="2x2"):
        plot_confusion([[1, 2, 3]], tmp_path / "c.png", "t")


def faces(n):
    return np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def test_confident_errors(tmp_path):
    labels = np.array([0, 1] * 20)
    scores = np.linspace(0, 1, 40)
    path = tmp_path / "errors.png"
    assert_valid_png(path, plot_confident_errors(faces(40), labels, scores, 0.5, path, "errors", k=16))


def test_confident_errors_when_there_are_none(tmp_path):
    labels = np.array([0, 0, 1, 1])
    path = tmp_path / "errors.png"
    written = plot_confident_errors(faces(4), labels, [0.1, 0.2, 0.8, 0.9], 0.5, path, "errors")
    assert_valid_png(path, written)


def test_confident_errors_reject_bad_images(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        plot_confident_errors(np.zeros((2, 64, 64)), [0, 1], [0.2, 0.8], 0.5, tmp_path / "e.png", "t")


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "confusion.png"
    path.write_bytes(b"old")
    assert_valid_png(path, plot_confusion([[1, 0], [0, 1]], path, "confusion"))


def test_forest_plot_of_intervals(tmp_path):
    def both(oof, test):
        return [{"label": "out of fold", "value": oof, "low": oof - 0.02, "high": oof + 0.02},
                {"label": "test", "value": test, "low": test - 0.05, "high": test + 0.06}]

    rows = [{"name": "a", "marked": True, "intervals": both(0.1, 0.12)},
            {"name": "b", "marked": False, "intervals": both(0.3, 0.25)}]
    path = tmp_path / "summary.png"
    assert_valid_png(path, plot_intervals(rows, path, "test HTER", "HTER"))
    with pytest.raises(ValueError, match="no rows"):
        plot_intervals([], path, "t", "x")
