"""PNG figures for a run: training curves, ROC, confusion matrix, confident errors.

Each function writes one PNG atomically (temp file, then rename, so a crash
never leaves half an image for DVC to hash), closes its figure, and returns
the path.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # stages run headless; must precede the pyplot import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facecls.atomic import atomic_path  # noqa: E402
from facecls.evaluation.rates import CLASS_NAMES, labels_at, most_confident_errors  # noqa: E402

STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "figure.titlesize": 14,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
DPI = 100
FACE_UPSCALE = 3  # 64 px faces shown at 192 px: big enough to see the accessory


def _save(fig, path) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return Path(path)


def plot_training_curves(histories: list[list[dict]], path, title: str) -> Path:
    """Training loss per epoch, one line per fold model (left); where early stopping read a tune
    part, its HTER per epoch with each model's kept epoch marked (right).

    Each history has one dict per epoch with ``epoch`` and ``train_loss``, and with early stopping
    ``tune_loss`` and ``tune_hter`` (at that epoch's HTER-optimal threshold, what it compares).
    """
    if not histories or not all(histories):
        raise ValueError("history is empty: no epochs to plot")
    for history in histories:
        for key in ("epoch", "train_loss"):
            if any(key not in row for row in history):
                raise ValueError(f"every history row needs {key!r}")
    tuned = all("tune_hter" in row for history in histories for row in history)
    marker = "o" if max(len(h) for h in histories) <= 40 else None

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2 if tuned else 1, figsize=(12 if tuned else 7, 4.6), layout="constrained",
                                 squeeze=False)
        loss_ax = axes[0][0]
        for k, history in enumerate(histories):
            epochs = [row["epoch"] for row in history]
            line, = loss_ax.plot(epochs, [row["train_loss"] for row in history], marker=marker,
                                 label=f"fold model {k + 1}" if len(histories) > 1 else "training loss")
            if tuned:
                loss_ax.plot(epochs, [row["tune_loss"] for row in history], color=line.get_color(), linestyle="--")
                hters = np.array([row["tune_hter"] for row in history], dtype=float)
                best = int(np.nanargmin(hters))
                axes[0][1].plot(epochs, hters, marker=marker, color=line.get_color())
                axes[0][1].scatter([epochs[best]], [hters[best]], s=160, facecolors="none", edgecolors="black",
                                   linewidths=2, zorder=3)
        loss_ax.set(title="Loss" + (" (dashed: tune part)" if tuned else ""), xlabel="epoch", ylabel="loss")
        loss_ax.legend(loc="best", fontsize=9)
        if tuned:
            axes[0][1].set(title="Tune HTER, best threshold (circled: the epoch kept)", xlabel="epoch",
                           ylabel="HTER")
        for ax in axes[0]:
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle(title)
    return _save(fig, path)


def plot_roc(fpr, tpr, path, title: str, auc: float | None = None, eer: float | None = None,
             operating_point: dict | None = None) -> Path:
    """ROC curve (label 1 positive) with the chance diagonal, AUC in the legend,
    the equal-error point, and ``operating_point`` = {"fpr", "tpr", optional
    "threshold"} (e.g. fpr = 1 - recall_0, tpr = recall_1 at the chosen threshold).
    """
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 6.4), layout="constrained")
        curve_label = "ROC" if auc is None else f"ROC (AUC = {auc:.4f})"
        ax.plot(fpr, tpr, color="tab:blue", linewidth=2, label=curve_label)
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", label="chance")
        if eer is not None:
            # On the ROC the EER point is where FPR = FNR, i.e. (eer, 1 - eer).
            ax.plot([0, 1], [1, 0], color="0.8", linestyle=":", linewidth=1)
            ax.scatter([eer], [1 - eer], marker="D", s=60, color="tab:orange", zorder=3,
                       label=f"equal error rate = {eer:.4f}")
        if operating_point is not None:
            label = (f"operating point: FPR {operating_point['fpr']:.3f}, "
                     f"TPR {operating_point['tpr']:.3f}")
            if operating_point.get("threshold") is not None:
                label += f"\n(threshold {operating_point['threshold']:.3f})"
            ax.scatter([operating_point["fpr"]], [operating_point["tpr"]], marker="*", s=220,
                       color="tab:red", edgecolors="black", zorder=4, label=label)
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal", title=title,
               xlabel="false positive rate = 1 − recall of 0 (accessory)",
               ylabel="true positive rate = recall of 1 (none)")
        ax.legend(loc="lower right")
    return _save(fig, path)


def plot_confusion(confusion, path, title: str, class_names=CLASS_NAMES) -> Path:
    """2x2 heat map of [[true0 pred0, true0 pred1], [true1 pred0, true1 pred1]],
    coloured by row percentage so the small accessory row reads as clearly as the large one."""
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.shape != (2, 2):
        raise ValueError(f"confusion must be 2x2, got shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    row_percent = 100.0 * counts / np.maximum(totals, 1)

    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(7.2, 5.6), layout="constrained")
        image = ax.imshow(row_percent, cmap="Blues", vmin=0, vmax=100)
        for (row, col), count in np.ndenumerate(counts):
            colour = "white" if row_percent[row, col] > 55 else "black"
            ax.text(col, row, f"{count:,}\n{row_percent[row, col]:.1f} % of row",
                    ha="center", va="center", color=colour, fontsize=13)
        ax.set_xticks([0, 1], [f"predicted {name}" for name in class_names])
        ax.set_yticks([0, 1], [f"actual {name}\n(n = {total:,})"
                               for name, total in zip(class_names, totals[:, 0])])
        fig.suptitle(title)
        fig.colorbar(image, ax=ax, label="% of the actual class", shrink=0.85)
    return _save(fig, path)


def plot_confident_errors(images, y_true, scores, threshold: float, path, title: str,
                          k: int = 16) -> Path:
    """Grid of the ``k`` misclassified faces whose scores lie farthest from the
    threshold (the most confidently wrong), each captioned with its true label
    and score; a figure saying "no errors" when there are none."""
    images = np.asarray(images)
    labels = np.asarray(y_true).astype(np.int64)
    values = np.asarray(scores, dtype=float)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be an N x H x W x 3 uint8 array, got {images.dtype} "
                         f"{images.shape}")
    if not len(images) == labels.size == values.size:
        raise ValueError(f"{len(images)} images but {labels.size} labels and {values.size} scores")

    predicted = labels_at(values, threshold)
    n_wrong = int(np.sum(predicted != labels))
    shown = most_confident_errors(labels, values, threshold, k)

    with plt.rc_context({**STYLE, "axes.grid": False}):
        if shown.size == 0:
            return _save(_message(f"no errors at threshold {threshold:.3f}\n"
                                  f"({labels.size:,} faces, all classified correctly)", title), path)

        captions = [f"true {CLASS_NAMES[labels[i]]}\nscore {values[i]:.3f}, called {predicted[i]}" for i in shown]
        fig = face_grid(images, shown, captions, f"{title}\n{shown.size} of {n_wrong:,} errors, most confident "
                        f"first (score = P(label 1), threshold {threshold:.3f})", columns=4)
    return _save(fig, path)


def plot_intervals(rows: list[dict], path, title: str, xlabel: str) -> Path:
    """A forest plot: one line per row ``{"name", "marked", "intervals": [{"label", "value", "low",
    "high"}, ...]}``, top to bottom in the given order, each of a row's intervals (the same labels in
    every row: out of fold, test) in a colour of its own, a little apart. The marked row is named
    chosen and its first interval shaded across the plot, so the rows that reach into it (within
    noise of it) show at a glance."""
    if not rows:
        raise ValueError("no rows to plot")
    labels = [interval["label"] for interval in rows[0]["intervals"]]
    colours = ["tab:blue", "tab:orange", "tab:green"]
    offsets = np.linspace(-0.15, 0.15, len(labels)) if len(labels) > 1 else [0.0]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8.5, 1.4 + 0.55 * len(rows)), layout="constrained")
        for y, row in enumerate(rows):
            for i, interval in enumerate(row["intervals"]):
                value = interval["value"]
                ax.errorbar(value, y + offsets[i], xerr=[[value - interval["low"]], [interval["high"] - value]],
                            fmt="D" if row["marked"] else "o", color=colours[i], capsize=4, markersize=6,
                            label=interval["label"] if y == 0 else None)
                ax.annotate(f"{value:.3f}", (interval["high"], y + offsets[i]), xytext=(6, 0),
                            textcoords="offset points", va="center", fontsize=8, color=colours[i])
            if row["marked"]:
                first = row["intervals"][0]
                ax.axvspan(first["low"], first["high"], color=colours[0], alpha=0.08, zorder=0)
        ax.set_yticks(range(len(rows)), [f"{r['name']} (chosen)" if r["marked"] else r["name"] for r in rows])
        ax.invert_yaxis()
        ax.set(title=title, xlabel=xlabel)
        ax.set_xlim(left=0, right=max(i["high"] for r in rows for i in r["intervals"]) * 1.15 + 0.01)
        # Under the axes: inside them it covers the lowest row.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=len(labels), fontsize=9, frameon=False)
    return _save(fig, path)


def face_grid(images, shown, captions: list[str], title: str, columns: int):
    """A figure of the faces ``images[shown]``, ``columns`` to a row, each enlarged under its caption."""
    columns = min(columns, len(shown))
    rows = -(-len(shown) // columns)
    face_inches = images.shape[2] * FACE_UPSCALE / DPI
    fig, axes = plt.subplots(rows, columns, squeeze=False, layout="constrained",
                             # Wide enough for the two-line title even with one face.
                             figsize=(max(6.4, columns * (face_inches + 0.25)), rows * (face_inches + 0.6) + 0.8))
    for ax in axes.flat:
        ax.axis("off")
    for ax, index, caption in zip(axes.flat, shown, captions):
        face = np.asarray(images[index]).repeat(FACE_UPSCALE, axis=0).repeat(FACE_UPSCALE, axis=1)
        ax.imshow(face, interpolation="nearest")
        ax.set_title(caption, fontsize=11, color="tab:red")
    fig.suptitle(title, fontsize=12)
    return fig


def _message(text: str, title: str):
    """A figure that says ``text`` where faces would be."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=14, transform=ax.transAxes)
    ax.axis("off")
    fig.suptitle(title)
    return fig


def plot_faces(images, shown, captions: list[str], path, title: str, columns: int = 6,
               empty: str = "no faces to show") -> Path:
    """``face_grid`` written to ``path`` (the audit's contact sheet of suspect labels); a figure
    saying ``empty`` when ``shown`` is empty."""
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig = face_grid(images, shown, captions, title, columns) if len(shown) else _message(empty, title)
        return _save(fig, path)
