"""Shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
