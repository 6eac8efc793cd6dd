"""Labelling unlabelled images: the label file is written whole or not at all."""

import numpy as np
import pytest
import torch

from facecls import atomic
from facecls.models.architectures import build_architecture
from facecls.models.inference import predict_scores
from facecls.predict import label_images, write_label_file


def test_labels_are_the_scores_at_the_threshold():
    torch.manual_seed(0)
    model = build_architecture("simplecnn").eval()
    images = np.random.default_rng(0).integers(0, 256, size=(9, 64, 64, 3), dtype=np.uint8)
    scores = predict_scores(model, images, torch.device("cpu"), tta=True)
    threshold = float(np.median(scores))
    labels = label_images(model, images, threshold, tta=True, device=torch.device("cpu"))
    assert labels.tolist() == [int(s >= threshold) for s in scores] and labels.sum() == 5


def test_a_failed_write_keeps_the_previous_label_file(tmp_path, monkeypatch):
    target = tmp_path / "label_val.txt"
    target.write_text("1\n0\n")

    def full_disk(self, text, encoding=None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.Path, "write_text", full_disk)
    with pytest.raises(OSError):
        write_label_file(target, np.array([0, 0, 0]))
    monkeypatch.undo()
    assert target.read_text() == "1\n0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["label_val.txt"]
