"""DVC's experiment queue runs a parameter grid of this pipeline, two at a time; `dvc exp show`
then compares them, and `facecls grid` pairs each recipe's out-of-fold faces (or its test faces)
with the default's: the workflow the README shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo_copy import dvc, dvc_env, git, make_tiny_repo


def queued_experiments(shown: list[dict]) -> dict[str, tuple[dict, dict]]:
    """{experiment name: (how its run went, its data)} from `dvc exp show --json`."""
    return {rev["name"]: (experiment.get("executor") or {}, rev["data"])
            for baseline in shown for experiment in baseline.get("experiments") or [] for rev in experiment["revs"]}


def why_not(repo: Path, name: str, executor: dict) -> str:
    """What DVC knows of an experiment that brought back no metrics: its state, its own log
    and the queue workers' logs, which alone say why when it failed before its first stage.
    `dvc exp run --run-all` exits 0 whatever became of its experiments."""
    run = executor.get("local") or {}
    log = Path(run["log"]) if run.get("log") else None
    own = log.read_text(errors="replace")[-3000:] if log and log.is_file() else "(no log)"
    workers = "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}"
                        for path in sorted((repo / ".dvc/tmp/exps/celery").glob("*.out")))
    return (f"{name}: state {executor.get('state')!r}, return code {run.get('returncode')!r}; its log:\n{own}\n"
            f"the queue workers' logs:\n{workers}")


@pytest.mark.slow  # a baseline run, then two experiments side by side: a few minutes on two shared cores
def test_a_queued_grid_runs_two_at_a_time_and_the_grid_pairs_its_recipes(tmp_path):
    repo = make_tiny_repo(tmp_path)
    # The baseline run first, committed, as the README says: experiments then rerun only what their params
    # change, and two of them never run the same stage at once (DVC races on its run cache when they do).
    dvc(repo, "repro", timeout=600)
    git(repo, "add", "dvc.lock")
    git(repo, "commit", "-q", "-m", "baseline run")
    # One experiment of the default recipe, one with another lr ('++' adds the key: the variant sets no lr).
    dvc(repo, "exp", "run", "--queue", "-S", "split.fold=0")
    dvc(repo, "exp", "run", "--queue", "-S", "split.fold=0", "-S", "++variants.simplecnn.lr=0.01")
    try:
        dvc(repo, "exp", "run", "--run-all", "-j", "2", timeout=900)
    finally:  # the queue's workers must not outlive the test's folder
        subprocess.run([sys.executable, "-m", "dvc", "queue", "stop"], cwd=repo, env=dvc_env(repo),
                       capture_output=True, timeout=60)

    experiments = queued_experiments(json.loads(dvc(repo, "exp", "show", "--json")))
    assert len(experiments) == 2, experiments.keys()
    lrs = [data["params"]["params.yaml"]["data"]["variants"]["simplecnn"].get("lr") for _, data in experiments.values()]
    assert sorted(lrs, key=str) == [0.01, None]
    for name, (executor, data) in experiments.items():
        figures = (data["metrics"].get("results/summary.json") or {}).get("data")
        assert executor.get("state") in (None, "success") and figures, why_not(repo, name, executor)
        assert 0 <= figures["simplecnn"]["hter"] <= 0.5 and figures["chosen"]

    shown = subprocess.run([sys.executable, "-m", "facecls.cli", "grid", "--baseline", "simplecnn", "--names",
                            "simplecnn,ensemble", "--json", "grid.json"], cwd=repo, env=dvc_env(repo),
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    rows = {(r["recipe"], r["name"]): r for r in json.loads((repo / "grid.json").read_text())["rows"]}
    assert set(rows) == {("default", "simplecnn"), ("default", "ensemble"), ("variants.simplecnn.lr=0.01", "simplecnn"),
                         ("variants.simplecnn.lr=0.01", "ensemble")}
    changed = rows[("variants.simplecnn.lr=0.01", "simplecnn")]
    assert changed["replicates"] == [[0, 0]] and changed["verdict"] in ("better", "worse", "within noise")
    assert changed["ci95"][0] <= changed["difference"] <= changed["ci95"][1]
    assert rows[("default", "simplecnn")]["verdict"] == "baseline"
    assert "| variants.simplecnn.lr=0.01 | simplecnn | 0/0 |" in shown.stdout
    assert "mean out-of-fold HTER" in shown.stdout

    on_test = subprocess.run([sys.executable, "-m", "facecls.cli", "grid", "--baseline", "simplecnn", "--names",
                              "simplecnn", "--part", "test"], cwd=repo, env=dvc_env(repo), capture_output=True,
                             text=True, timeout=300)
    assert on_test.returncode == 0 and "mean test HTER" in on_test.stdout, on_test.stderr

    # The same experiments compared with the changed recipe instead: the difference turns round.
    turned = subprocess.run([sys.executable, "-m", "facecls.cli", "grid", "--baseline", "simplecnn",
                             "--baseline-recipe", "variants.simplecnn.lr=0.01", "--names", "simplecnn",
                             "--json", "turned.json"], cwd=repo, env=dvc_env(repo), capture_output=True, text=True,
                            timeout=300)
    assert turned.returncode == 0, turned.stderr
    back = {(r["recipe"], r["name"]): r for r in json.loads((repo / "turned.json").read_text())["rows"]}
    assert back[("variants.simplecnn.lr=0.01", "simplecnn")]["verdict"] == "baseline"
    assert back[("default", "simplecnn")]["difference"] == pytest.approx(-changed["difference"])
