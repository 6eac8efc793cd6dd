"""DVC's experiment queue runs a parameter grid of this pipeline, two at a time, and
`dvc exp show` then compares them: the workflow the README shows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.repo_copy import dvc, dvc_env, make_tiny_repo


def queued_experiments(shown: list[dict]) -> dict[str, dict]:
    """{experiment name: its data} from `dvc exp show --json`."""
    return {rev["name"]: rev["data"] for baseline in shown for experiment in baseline.get("experiments") or []
            for rev in experiment["revs"]}


@pytest.mark.slow  # two whole pipeline runs side by side: a minute or two on two shared cores
def test_a_queued_grid_runs_two_at_a_time_and_shows_params_and_metrics(tmp_path):
    repo = make_tiny_repo(tmp_path)
    # '++' adds the key: the variant does not set its own lr yet.
    dvc(repo, "exp", "run", "--queue", "-S", "++variants.simplecnn.lr=0.003,0.001")
    try:
        dvc(repo, "exp", "run", "--run-all", "-j", "2", timeout=900)
    finally:  # the queue's workers must not outlive the test's folder
        subprocess.run([sys.executable, "-m", "dvc", "queue", "stop"], cwd=repo, env=dvc_env(repo),
                       capture_output=True, timeout=60)

    experiments = queued_experiments(json.loads(dvc(repo, "exp", "show", "--json")))

    assert len(experiments) == 2, experiments.keys()
    lrs = [data["params"]["params.yaml"]["data"]["variants"]["simplecnn"]["lr"] for data in experiments.values()]
    assert sorted(lrs) == [0.001, 0.003]
    for name, data in experiments.items():
        metrics = {path: (found or {}).get("data") for path, found in data["metrics"].items()}
        figures = metrics["results/summary.json"]
        assert figures, f"{name}: no metrics in the experiment ({metrics})"
        assert 0 <= figures["simplecnn"]["hter"] <= 0.5 and figures["chosen"]
