"""End to end: `dvc repro` of the real dvc.yaml on tiny configurations in temporary copies."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from facecls.evaluation.rates import hter
from tests.repo_copy import TWO_VARIANTS, dvc, dvc_env, make_tiny_repo

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def declared_outputs(repo: Path) -> list[Path]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return [repo / out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])]


def test_repro_writes_every_declared_output_and_a_second_repro_does_nothing(tmp_path):
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=1, n_train=96, n_val=21)
    dvc(repo, "repro")
    outputs = declared_outputs(repo)
    assert len(outputs) >= 2 + 2 * 8 + 3
    missing = [str(p.relative_to(repo)) for p in outputs if not p.exists()]
    assert not missing

    labels = (repo / "results" / "label_val.txt").read_text().splitlines()
    assert len(labels) == 21 and set(labels) <= {"0", "1"}
    summary = (repo / "results" / "summary.md").read_text()
    assert "simplecnn_weighted" in summary and "Best variant" in summary

    metrics = json.loads(dvc(repo, "metrics", "show", "--json"))
    files = next(iter(metrics.values()))["data"]
    for variant in TWO_VARIANTS:
        shown = files[f"results/metrics/{variant}.json"]["data"]
        assert {"hter", "recall_0", "recall_1", "threshold", "auc", "hter_at_0_5", "weights"} <= set(shown)

    again = dvc(repo, "repro")
    assert "Data and pipelines are up to date" in again
    assert "changed" not in dvc(repo, "status")
    dvc(repo, "plots", "show", "-o", str(tmp_path / "plots"))
    assert (tmp_path / "plots" / "index.html").exists()


def test_changing_one_variant_reruns_only_its_stages(tmp_path):
    repo = make_tiny_repo(tmp_path, variants=TWO_VARIANTS, epochs=1, n_train=64, n_val=8)
    dvc(repo, "repro")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["variants"]["simplecnn"]["lr"] = 0.0005
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = dvc(repo, "status")
    assert "train@simplecnn:" in status and "train@simplecnn_weighted" not in status


@pytest.mark.skipif(not (SHARED / "faces-sample.zip").exists(), reason="../shared/data/faces-sample.zip is absent")
def test_faces_sample_label_file_scores_well_against_the_truth(tmp_path):
    weighted = TWO_VARIANTS["simplecnn_weighted"]
    repo = make_tiny_repo(tmp_path, variants={"simplecnn_weighted": weighted,
                                              "simplecnn_weighted_seed1": {**weighted, "seed": 1}}, epochs=2)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["archive"] = str(SHARED / "faces-sample.zip")
    params["train"]["batch_size"] = 64
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(repo, "repro", timeout=900)
    predicted = np.array([int(v) for v in (repo / "results" / "label_val.txt").read_text().split()])
    truth = np.array([int(v) for v in (SHARED / "faces-sample-val-truth.txt").read_text().split()])
    assert len(predicted) == len(truth) == 500
    assert hter(truth, predicted) < 0.35  # chance is 0.5; two CPU epochs of SimpleCNN reach about 0.2-0.25

    # `facecls score --variants`: the same HTER for the label file, and a row per scored variant.
    scored = subprocess.run([sys.executable, "-m", "facecls.cli", "score", str(SHARED / "faces-sample-val-truth.txt"),
                             "--variants"], cwd=repo, env=dvc_env(repo), capture_output=True, text=True, check=True)
    lines = scored.stdout.splitlines()
    assert f"HTER {hter(truth, predicted):.4f}" in lines[0]
    rows = [line for line in lines if line.startswith("| simplecnn_weighted") or line.startswith("| ensemble")]
    assert len(rows) == 3 and sum("(chosen)" in line for line in rows) == 1
