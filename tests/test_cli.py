"""The facecls command: `facecls label FOLDER` with a model file outside DVC, `facecls extract`."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from facecls.cli import label_folder, main
from facecls.errors import FaceclsError
from facecls.models.architectures import build_architecture
from facecls.models.files import save_model
from facecls.models.inference import predict_scores
from tests.archives import small_archive
from tests.toy_faces import conv_output_dtypes


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    model = build_architecture("simplecnn")
    path = tmp_path / "model.pt"
    save_model(path, model, {"arch": "simplecnn", "mode": "full", "variant": "simplecnn",
                             "weights_used": "random"}, threshold=0.5, tta=False)
    return path, model.eval()


def write_folder(folder, numbers, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir()
    images = {}
    for n in numbers:
        images[n] = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        Image.fromarray(images[n]).save(folder / f"{n}.png")  # PNG: lossless, so scores can be compared
    return images


def test_label_file_has_one_line_per_image_in_numeric_order(tmp_path, model_file):
    path, model = model_file
    numbers = [1, 2, 3, 9, 10, 11, 100]
    images = write_folder(tmp_path / "imgs", numbers)
    in_order = np.stack([images[n] for n in sorted(numbers)])
    scores = predict_scores(model, in_order, torch.device("cpu"))
    threshold = float(np.median(scores))  # half the faces each side, so any reordering shows
    result = label_folder(tmp_path / "imgs", path, tmp_path / "labels.txt", threshold, False, "cpu")
    lines = (tmp_path / "labels.txt").read_text().splitlines()
    assert result["n"] == len(lines) == len(numbers)
    assert lines == [str(int(s >= threshold)) for s in scores]


def test_a_model_without_threshold_needs_one(tmp_path):
    model = build_architecture("simplecnn")
    save_model(tmp_path / "m.pt", model, {"arch": "simplecnn", "mode": "full", "variant": "simplecnn"})
    write_folder(tmp_path / "imgs", [1, 2])
    with pytest.raises(FaceclsError, match="pass --threshold"):
        label_folder(tmp_path / "imgs", tmp_path / "m.pt", tmp_path / "out.txt", None, None, "cpu")


def test_console_command_reports_where_it_wrote(tmp_path, model_file):
    path, _ = model_file
    write_folder(tmp_path / "imgs", [1, 2, 3])
    done = subprocess.run([sys.executable, "-m", "facecls.cli", "label", str(tmp_path / "imgs"), "--model",
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert str(tmp_path / "label_imgs.txt") in done.stdout
    assert len((tmp_path / "label_imgs.txt").read_text().splitlines()) == 3
    bad = subprocess.run([sys.executable, "-m", "facecls.cli", "label", str(tmp_path / "nothere"), "--model",
                          str(path)], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_extract_writes_the_images_as_files_or_fails_with_one_line(tmp_path, monkeypatch, capsys):
    archive = small_archive(tmp_path / "faces.zip", labels=(0, 1, 1), prefix="a/b/")
    monkeypatch.setattr(sys, "argv", ["facecls", "extract", str(archive), str(tmp_path / "raw")])
    main()
    assert capsys.readouterr().out == (f"extracted into {tmp_path / 'raw'}: {archive} (root a/b/): 3 train images "
                                       "(class 0: 1, class 1: 2), 3 val images\n")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["label_train.txt", "train_img", "val_img"]
    assert len(list((tmp_path / "raw" / "train_img").iterdir())) == 3
    archive.write_bytes(b"not a zip")
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"error: {archive}: not a zip archive, or a truncated one\n"


@pytest.mark.parametrize(("stored", "given", "used"), [
    ("bf16", None, "bf16"), ("fp32", None, "fp32"), (None, None, "fp32"), ("bf16", "fp32", "fp32")])
def test_label_scores_in_the_model_files_precision_unless_told(tmp_path, stored, given, used):
    """The predict stage stores the knob in results/model.pt; a file from before the knob has none (fp32)."""
    config = {"arch": "simplecnn", "mode": "full", "variant": "simplecnn", **({"precision": stored} if stored else {})}
    save_model(tmp_path / "m.pt", build_architecture("simplecnn"), config, threshold=0.5, tta=False)
    write_folder(tmp_path / "imgs", [1, 2])
    with conv_output_dtypes() as seen:
        result = label_folder(tmp_path / "imgs", tmp_path / "m.pt", tmp_path / "out.txt", None, None, "cpu", given)
    assert result["precision"] == used
    assert seen["eval"] == {torch.bfloat16 if used == "bf16" else torch.float32}


def test_a_model_file_with_an_unknown_precision_is_refused(tmp_path):
    save_model(tmp_path / "m.pt", build_architecture("simplecnn"),
               {"arch": "simplecnn", "mode": "full", "precision": "fp16"}, threshold=0.5)
    write_folder(tmp_path / "imgs", [1])
    with pytest.raises(FaceclsError, match=r"m.pt: precision must be one of \('auto', 'fp32', 'bf16'\), got 'fp16'"):
        label_folder(tmp_path / "imgs", tmp_path / "m.pt", tmp_path / "out.txt", None, None, "cpu")
