"""A DVC remote carries the archive, its manifest, the prepared arrays, the models and the
predictions to another clone: `dvc push` here, `dvc pull` there, and nothing is run again."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from tests.repo_copy import TINY_ARCHIVE, dvc, git, make_tiny_repo


def output_files(repo: Path) -> dict[str, str]:
    """{path: sha256} of every file under data/, models/ and results/."""
    found = {}
    for folder in ("data", "models", "results"):
        for file in sorted((repo / folder).rglob("*")):
            if file.is_file():
                found[file.relative_to(repo).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def test_a_fresh_clone_pulls_every_output_and_has_nothing_to_run(tmp_path):
    repo = make_tiny_repo(tmp_path)
    git(repo, "rm", "-q", "--cached", TINY_ARCHIVE)  # the archive goes to the remote too, not into git
    dvc(repo, "add", TINY_ARCHIVE)
    dvc(repo, "repro")
    dvc(repo, "remote", "add", "-d", "storage", str(tmp_path / "storage"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline run, remote storage")
    assert "pushed" in dvc(repo, "push")

    clone = tmp_path / "clone"  # a new clone: an empty DVC cache and none of the cached outputs
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True, capture_output=True)
    assert not (clone / "models").exists() and not (clone / TINY_ARCHIVE).exists()
    dvc(clone, "pull")

    pulled, original = output_files(clone), output_files(repo)
    missing = sorted(set(original) - set(pulled))
    assert not missing, f"not in the clone after a pull (`cache: false` outputs travel in git): {missing}"
    assert pulled == original
    assert "data/manifest.json" in pulled and not (clone / "data/raw").exists(), "nothing is extracted"
    rerun = dvc(clone, "repro")
    assert "Running stage" not in rerun, f"a pulled clone has every output already:\n{rerun}"
    assert "Data and pipelines are up to date" in dvc(clone, "status")
