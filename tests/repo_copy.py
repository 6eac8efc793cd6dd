"""Tiny copies of this repository, for tests that run DVC itself on the real dvc.yaml.

``make_tiny_repo`` copies the project's files (not its data or outputs) into a
temporary folder, adds a tiny learnable archive, cuts params.yaml down to
seconds of work and commits it all to a fresh git repository there.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from tests.toy_faces import toy_images

REPO = Path(__file__).resolve().parents[1]
# Made by the pipeline or by DVC, or too big to copy: a tiny repo makes its own. dvc.lock
# too: after a user's own `dvc repro` it describes their run, not the tiny one. Of data/, only the
# committed data/weights/ folder (a dependency of the weights stage) is copied.
NOT_COPIED = ("data/", "models/", "results/", "dvclive/", ".dvc/cache/", ".dvc/tmp/", "dvc.lock", "dvc_plots/")
TINY_ARCHIVE = "data/tiny-faces.zip"
# Two variants: the ensemble stage takes two members.
TWO_VARIANTS = {"simplecnn": {"arch": "simplecnn"}, "simplecnn_weighted": {"arch": "simplecnn", "weighted": True}}


def project_files(repo: Path = REPO) -> list[str]:
    """The files git tracks or would track (untracked, not ignored), relative to ``repo``."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=repo, check=True, capture_output=True, text=True).stdout
    return [name for name in listed.split("\0") if name and (repo / name).is_file()
            and (not name.startswith(NOT_COPIED) or name.startswith("data/weights/"))]


def write_tiny_archive(path: Path, n_train: int = 96, n_val: int = 16, seed: int = 0) -> np.ndarray:
    """An archive in the exercise layout whose class 0 faces wear a dark band across the
    eyes: a SimpleCNN learns it in an epoch or two. Returns the train labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n_train) >= 0.3).astype(np.uint8)
    labels[:4], labels[4:8] = 0, 1  # both classes, in the training and the held-out part
    val_labels = (rng.random(n_val) >= 0.3).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for folder, images in (("train_img", toy_images(labels, seed)), ("val_img", toy_images(val_labels, seed + 1))):
            for number, image in enumerate(images, start=1):
                jpeg = io.BytesIO()
                Image.fromarray(image).save(jpeg, format="JPEG", quality=90)
                archive.writestr(f"tiny_faces/{folder}/{number:06d}.jpg", jpeg.getvalue())
        archive.writestr("tiny_faces/label_train.txt", "".join(f"{label}\n" for label in labels))
    return labels


def tiny_params(variants: dict | None = None, epochs: int = 1, archive: str = TINY_ARCHIVE) -> dict:
    """The project's params.yaml with ``variants`` (default: two SimpleCNNs), ``epochs``, batches of
    16, one CPU thread (tests share few cores), two cross-validation folds and a one-epoch, three-fold
    audit, and an ensemble of the first two variants. With one variant, the ensemble names it twice:
    dvc.yaml parses, and only a run of the ensemble stage would refuse it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"]["archive"] = archive
    params["train"].update(epochs=epochs, batch_size=16, threads=1, nproc=1, device="cpu")
    params["audit"].update(epochs=1, batch_size=16, folds=3)
    params["cv"]["folds"] = 2
    params["variants"] = variants or TWO_VARIANTS
    # Whatever names variants must name the tiny ones.
    params["predict"]["variant"] = "best"
    params["ensembles"] = {"ensemble": (list(params["variants"]) * 2)[:2]}
    return params


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=facecls tests", "-c", "user.email=tests@facecls.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def make_tiny_repo(tmp_path: Path, variants: dict | None = None, epochs: int = 1, n_train: int = 96,
                   n_val: int = 16) -> Path:
    """A committed git + DVC repository at ``tmp_path/repo``: this project's code and
    dvc.yaml, a tiny archive, and tiny params. Returns its path."""
    repo = tmp_path / "repo"
    for name in project_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, repo / name)
    write_tiny_archive(repo / TINY_ARCHIVE, n_train=n_train, n_val=n_val)
    params = tiny_params(variants, epochs)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tiny copy of facecls")
    return repo


def dvc_env(repo: Path) -> dict:
    """The environment for DVC in ``repo``: its stages import the facecls copied there (the
    code whose hashes DVC records), not an installed one that may be mid-edit."""
    path = os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "DVC_NO_ANALYTICS": "1"}


def dvc(repo: Path, *args: str, timeout: float = 300) -> str:
    """Run ``dvc args`` in ``repo``; return its output, or fail the test showing it."""
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=dvc_env(repo), capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} exited with {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout
