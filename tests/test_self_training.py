"""Self-training: confident pseudo-labels in the train part's proportions, a second round on them,
tune and test untouched."""

import numpy as np
import pytest

from facecls.data.split import TEST, TRAIN, TUNE
from facecls.models.files import load_model
from facecls.training.self_training import StackedImages, pseudo_labels, self_train, with_pseudo_labels
from tests.toy_faces import toy_config, toy_images, toy_set


def test_only_confident_faces_become_labels_and_in_the_train_proportions():
    scores = np.array([0.01, 0.05, 0.2, 0.5, 0.85, 0.95, 0.96, 0.97, 0.98, 0.99, 0.991, 0.995, 0.999, 0.9995])
    chosen, labels = pseudo_labels(scores, np.array([0] * 20 + [1] * 80), confidence=0.9)
    # 0.2, 0.5 and 0.85 are not confident; two confident zeros allow eight ones at 20:80, so the least
    # confident of the nine confident ones (0.95) is left out.
    assert sorted(chosen[labels == 0].tolist()) == [0, 1]
    assert sorted(chosen[labels == 1].tolist()) == [6, 7, 8, 9, 10, 11, 12, 13]


def test_a_surplus_of_confident_minority_faces_is_cut_too():
    scores = np.array([0.01] * 10 + [0.99] * 10)
    chosen, labels = pseudo_labels(scores, np.array([0] * 10 + [1] * 90), confidence=0.9)
    assert (labels == 1).sum() == 10 and (labels == 0).sum() == 1


def test_stacked_images_read_as_one_array():
    first, second = np.arange(5 * 2).reshape(5, 2), np.arange(100, 106).reshape(3, 2)
    stacked = StackedImages(first, second)
    assert len(stacked) == 8 and stacked.shape == (8, 2)
    assert np.array_equal(stacked[np.array([0, 4, 5, 7])], np.array([[0, 1], [8, 9], [100, 101], [104, 105]]))
    assert np.array_equal(stacked[3:6], np.concatenate([first, second])[3:6])
    assert np.array_equal(np.asarray(stacked), np.concatenate([first, second]))


def test_pseudo_labelled_faces_join_the_train_part_only():
    data = toy_set(n=60)
    extra = toy_images(np.array([0, 1, 1]), seed=9)
    joined = with_pseudo_labels(data, extra, np.array([2, 0]), np.array([1, 0], dtype=np.uint8), ["a.jpg", "b.jpg",
                                                                                                   "c.jpg"])
    assert np.array_equal(joined.tune_rows, data.tune_rows) and np.array_equal(joined.test_rows, data.test_rows)
    assert list(joined.part[60:]) == [TRAIN, TRAIN] and list(joined.labels[60:]) == [0, 1]
    assert np.array_equal(joined.images[np.array([60, 61])], extra[[0, 2]])
    assert joined.files[60:] == ["val_img/a.jpg", "val_img/c.jpg"]
    assert set(np.unique(joined.part[:60])) <= {TRAIN, TUNE, TEST}


@pytest.mark.slow
def test_self_training_trains_a_second_round_on_the_confident_unlabelled_faces(tmp_path):
    data = toy_set(n=120)
    unlabelled = toy_images(np.array([0, 1] * 20), seed=5)
    summary = self_train(toy_config(epochs=3, self_training=True), data, unlabelled, tmp_path / "toy.pt", None,
                         tmp_path / "resume" / "toy.pt")
    counts = summary["pseudo_labels"]
    assert counts["unlabelled"] == 40 and counts["class_0"] + counts["class_1"] > 20
    assert counts["class_0"] > 0 and counts["class_1"] > 0
    assert summary["train_seconds"] > summary["round1"]["train_seconds"], "the cost counts both rounds"
    _, info = load_model(tmp_path / "toy.pt")
    assert info["summary"]["pseudo_labels"] == counts
    assert not list((tmp_path / "resume").glob("*")), "round 1's scratch files are gone"
