"""The prepared folder as later stages read it: image sets split into shards under DVC's
1 GiB copy loop, read back as one array; a broken folder is one clean error."""

from __future__ import annotations

import numpy as np
import pytest
from dvc_objects.fs.utils import COPY_PBAR_MIN_SIZE

from facecls.data import prepared as prepared_module
from facecls.data.index import build_index
from facecls.data.prepared import SHARD_ROWS, ShardedImages, load_labelled, load_unlabelled, shard_name
from facecls.errors import FaceclsError
from tests.archives import checked_archive, val_grey

LABELS = [1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]
VAL = range(1, 12)


def test_a_full_shard_stays_below_the_size_dvc_copies_with_its_slow_loop():
    assert SHARD_ROWS * 64 * 64 * 3 + 128 < COPY_PBAR_MIN_SIZE  # a .npy header is under 128 bytes
    assert 100_000 > SHARD_ROWS  # the exercise's 100,000 faces do need two


def test_sharded_sets_read_back_the_same_images_as_one_array(tmp_path, monkeypatch):
    manifest = checked_archive(tmp_path / "archive", LABELS, val_numbers=VAL)
    build_index(manifest, tmp_path / "whole", 0.25, 0.25, seed=0)
    monkeypatch.setattr(prepared_module, "SHARD_ROWS", 4)
    build_index(manifest, tmp_path / "sharded", 0.25, 0.25, seed=0)

    names = sorted(p.name for p in (tmp_path / "sharded").glob("*.npy"))
    assert names == ["train_img.0.npy", "train_img.1.npy", "train_img.2.npy",
                     "val_img.0.npy", "val_img.1.npy", "val_img.2.npy"]
    assert [len(np.load(tmp_path / "sharded" / n, mmap_mode="r")) for n in names[3:]] == [4, 4, 3]
    whole, sharded = load_unlabelled(tmp_path / "whole").images, load_unlabelled(tmp_path / "sharded").images
    assert sharded.shape == whole.shape == (11, 64, 64, 3)
    assert np.array_equal(np.asarray(sharded), np.asarray(whole))
    greys = np.asarray(sharded).reshape(11, -1).mean(axis=1)
    assert np.abs(greys - [val_grey(n) for n in VAL]).max() < 2  # in numeric order across shards
    for rows in ([10, 0, 5, 5], [1, 2], slice(2, 9), -1, np.arange(11) % 3 == 0):
        assert np.array_equal(sharded[rows], whole[rows])
    labelled = load_labelled(tmp_path / "sharded")
    assert np.array_equal(np.asarray(labelled.images), np.asarray(load_labelled(tmp_path / "whole").images))


def test_rows_outside_the_set_are_an_index_error():
    images = ShardedImages([np.zeros((4, 64, 64, 3), np.uint8), np.zeros((2, 64, 64, 3), np.uint8)])
    assert len(images) == 6 and images[5].shape == (64, 64, 3) and images[[]].shape == (0, 64, 64, 3)
    for rows in (6, -7, [0, 6]):
        with pytest.raises(IndexError, match="out of range for 6 images"):
            images[rows]


@pytest.mark.parametrize(("damage", "problem"), [
    (lambda d: [p.unlink() for p in d.glob("val_img.*.npy")], "val_img.0.npy: not found (run `dvc repro index` first)"),
    (lambda d: (d / shard_name("val_img", 0)).unlink(), "val_img shards [0] missing (found [1, 2])"),
    (lambda d: (d / shard_name("val_img", 1)).unlink(), "val_img shards [1] missing (found [0, 2])"),
    (lambda d: (d / shard_name("val_img", 2)).unlink(), "val_img shards hold 8 images, the index lists 11"),
    (lambda d: np.save(d / shard_name("val_img", 1), np.zeros((4, 64, 64), np.uint8)),
     "val_img.1.npy: expected N x 64 x 64 x 3 uint8, found (4, 64, 64) uint8"),
    (lambda d: (d / shard_name("val_img", 2)).write_bytes(b"half"), "val_img.2.npy: not a readable image array"),
])
def test_a_broken_prepared_folder_is_one_clean_error(tmp_path, monkeypatch, damage, problem):
    monkeypatch.setattr(prepared_module, "SHARD_ROWS", 4)
    build_index(checked_archive(tmp_path / "archive", LABELS, val_numbers=VAL), tmp_path / "prepared", 0.25, 0.25, 0)
    damage(tmp_path / "prepared")
    with pytest.raises(FaceclsError) as error:
        load_unlabelled(tmp_path / "prepared")
    assert problem in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "prepared"))
