"""The label audit: it finds labels that were flipped on purpose, shows and counts what it flags,
and can be switched off."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from facecls.audit.issues import rank_issues
from facecls.audit.out_of_sample import out_of_sample_scores
from facecls.audit.settings import audit_training_config, check_label_issues
from facecls.data.index import build_index
from facecls.data.manifest import check_archive, write_manifest
from facecls.data.prepared import load_labelled
from facecls.errors import FaceclsError
from facecls.tools.planted import check_flags, flip_labels
from tests.repo_copy import tiny_params, write_tiny_archive

SHARED = Path(__file__).parents[1].parent / "shared" / "data"


def prepared_from(archive: Path, root: Path, split=(0.1,)) -> Path:
    write_manifest(root / "manifest.json", check_archive(archive))
    build_index(root / "manifest.json", root / "prepared", *split, 0)
    return root / "prepared"


def audit_params(**audit) -> dict:
    params = tiny_params()
    params["audit"].update(audit)
    return params


def top_share(ranked: np.ndarray, planted: set[int], top: int) -> float:
    """The share of the planted errors among the ``top`` most suspect faces."""
    return len(planted & set(ranked[:top].tolist())) / len(planted)


def test_the_audit_ranks_planted_label_errors_among_its_top_suspects(tmp_path):
    archive = tmp_path / "clean.zip"
    write_tiny_archive(archive, n_train=400, n_val=4, seed=3)
    flipped = flip_labels(archive, tmp_path / "flipped.zip", fraction=0.03, seed=1)
    data = load_labelled(prepared_from(tmp_path / "flipped.zip", tmp_path))
    planted = {number - 1 for number in flipped}  # image N is row N - 1
    params = audit_params(epochs=3, batch_size=16, folds=4)
    scores, _ = out_of_sample_scores(data, audit_training_config(params), 4, 0, tmp_path / "work")
    ranked = rank_issues(data.labels, scores, data.part, "prune_by_noise_rate", "self_confidence")

    assert len(planted) == 12
    assert top_share(ranked, planted, 2 * len(planted)) >= 0.75, "most planted errors rank among the top 24"
    # The same test on random ranks fails: it measures the ranking, not the luck of a small set.
    random_ranks = np.random.default_rng(0).permutation(len(data.labels))
    assert top_share(random_ranks, planted, 2 * len(planted)) < 0.75


def run_audit_stage(run_stage, workspace: Path, params: dict):
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return run_stage("audit", workspace)


def test_the_stage_writes_its_list_sheet_and_counts(tmp_path, run_stage):
    archive = tmp_path / "faces.zip"
    write_tiny_archive(archive, n_train=120, n_val=4)
    prepared_from(archive, tmp_path / "data")
    done = run_audit_stage(run_stage, tmp_path, audit_params(epochs=1, batch_size=16, folds=3, sheet=6))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "results/audit/label_issues.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((tmp_path / "results/audit/summary.json").read_text())
    assert summary["enabled"] and summary["faces"] == 120 and summary["flagged"] == len(rows)
    assert summary["flagged_train"] + summary["flagged_test"] == len(rows)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert (tmp_path / "results/audit/label_issues.png").stat().st_size > 1000
    assert "labels flagged" in done.stdout


def test_switched_off_it_flags_nothing_and_drop_refuses_to_run_without_it(tmp_path, run_stage):
    done = run_audit_stage(run_stage, tmp_path, audit_params(enabled=False))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "results/audit/label_issues.csv").read_text() == "rank,file,row,part,label,score\n"
    assert json.loads((tmp_path / "results/audit/summary.json").read_text()) == {"enabled": False}
    with pytest.raises(FaceclsError, match="train.label_issues drop needs the audit, but audit.enabled is false"):
        check_label_issues(audit_params(enabled=False), "drop")
    check_label_issues(audit_params(enabled=False), "keep")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "faces-sample.zip").exists(), reason="needs ../shared/data/faces-sample.zip")
def test_on_faces_sample_with_3_percent_flipped_it_flags_most_of_them_and_few_others(tmp_path):
    flipped = tmp_path / "flipped.zip"
    numbers = flip_labels(SHARED / "faces-sample.zip", flipped, fraction=0.03, seed=0)
    (tmp_path / "flipped.flipped.txt").write_text("".join(f"{n}\n" for n in numbers))
    data = load_labelled(prepared_from(flipped, tmp_path))
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    params["train"]["threads"] = min(2, os.cpu_count() or 1)
    settings = params["audit"]
    scores, _ = out_of_sample_scores(data, audit_training_config(params), settings["folds"], settings["seed"],
                                     tmp_path / "work")
    ranked = rank_issues(data.labels, scores, data.part, settings["filter_by"], settings["rank_by"])
    (tmp_path / "issues.csv").write_text("file\n" + "".join(f"{data.files[i]}\n" for i in ranked))
    found = check_flags(tmp_path / "flipped.flipped.txt", tmp_path / "issues.csv")
    assert found["flipped"] == 75 and found["recall"] >= 0.5 and found["flagged"] < 500, found
