"""Shared fixtures for the data-stage tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]


@pytest.fixture
def run_stage():
    """Run ``stages/<name>.py`` the way DVC does: cwd=``workspace``, which holds the params.yaml it reads."""

    def run(name: str, workspace: Path) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        return subprocess.run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd=workspace, env=env,
                              capture_output=True, text=True, timeout=120)

    return run
