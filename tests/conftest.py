"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from facecls.data.extract import extract_archive
from facecls.data.index import build_index
from facecls.data.manifest import check_archive, write_manifest
from tests.archives import small_archive

REPO = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def outside_the_project(tmp_path_factory, monkeypatch):
    """Each test starts in an empty folder, not in this checkout: DVCLive finds the DVC repo
    from the working directory and keeps a signal file for VS Code there, which two test
    processes training at once race to delete (FileNotFoundError in Live.end)."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def run_stage():
    """Run ``stages/<name>.py`` the way DVC does: cwd=``workspace``, which holds the params.yaml it reads."""

    def run(name: str, workspace: Path, *args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py"), *args], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=120)

    return run


@pytest.fixture
def previous(tmp_path) -> Path:
    """data/ after an earlier good run: its manifest, its index and an extraction, which a failing
    check, index or extract must leave alone."""
    data = tmp_path / "data"
    earlier = small_archive(tmp_path / "earlier.zip")
    write_manifest(data / "manifest.json", check_archive(earlier))
    build_index(data / "manifest.json", data / "prepared", 0.25, 0)
    extract_archive(earlier, data / "raw")
    (data / "raw" / "marker").write_text("earlier run")
    return data
