"""The study grid read back: DVC experiments over recipes, and replicates of each (``-S
train.seed=1`` for training randomness, ``-S split.fold=1`` for another test part), grouped into
recipes and compared, paired, with the default.

An experiment's *recipe* is how its params differ from params.yaml in the keys that vary across
the experiments read (``split.fold`` and ``train.seed`` aside: replicates are what a recipe is
measured over); keys every experiment sets alike (the archive, say) are context, not recipe. Each
recipe is scored per scored name (a variant, or an ensemble) on its out-of-fold faces (every train
face; or with ``part="test"`` the test part) in each replicate it ran, and compared with the
baseline (the default recipe's chosen variant unless told otherwise) on the replicates both ran.

An experiment carries every output its baseline commit had, also those of stages it did not
run (a grid that targets one stage). A name's figures count only where every stage they come
from ran with this experiment's params: each stage upstream of the name's scoring stage in the
experiment's dvc.lock must record the params the experiment set.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from facecls.errors import FaceclsError, one_line
from facecls.evaluation.pairing import (OOF_SCORES, TEST_SCORES, ScoredFaces, paired_difference, read_scored_faces,
                                        verdict)

# What a replicate is: the test part (split.fold) and the training seed. Not a recipe.
REPLICATE_KEYS = ("split.fold", "train.seed")
DEFAULT = "default"
PARTS = {"oof": OOF_SCORES, "test": TEST_SCORES}


@dataclass
class Experiment:
    name: str
    rev: str
    params: dict  # params.yaml as the experiment ran it, nested
    lock: dict = field(default_factory=dict)  # its dvc.lock

    @property
    def replicate(self) -> tuple[int, int]:
        flat = flatten(self.params)
        return tuple(int(flat.get(key, 0)) for key in REPLICATE_KEYS)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": leaf}; lists become tuples, so values compare and hash."""
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: tuple(tree) if isinstance(tree, list) else tree}


def _run(repo: Path, *args: str) -> str:
    done = subprocess.run(list(args), cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise FaceclsError(f"{repo}: `{' '.join(args[-4:])}` failed: {one_line(done.stderr or done.stdout)}")
    return done.stdout


def read_experiments(repo: Path, all_commits: bool = False) -> list[Experiment]:
    """Every finished experiment of HEAD (of every commit with ``all_commits``), from `dvc exp show`."""
    shown = json.loads(_run(repo, sys.executable, "-m", "dvc", "exp", "show", "--json",
                            *(["--all-commits"] if all_commits else [])))
    found = []
    for baseline in shown:
        for experiment in baseline.get("experiments") or []:
            for rev in experiment["revs"]:
                data = rev.get("data") or {}
                params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
                state = (experiment.get("executor") or {}).get("state")  # finished ones may have none
                if not (rev.get("name") and params) or state not in (None, "success"):
                    continue  # queued, running or failed
                sha = data.get("rev", rev["rev"])
                lock = subprocess.run(["git", "show", f"{sha}:dvc.lock"], cwd=repo, capture_output=True, text=True)
                if lock.returncode != 0:  # failed before its first stage finished
                    print(f"warning: experiment {rev['name']} has no dvc.lock: skipped", file=sys.stderr)
                    continue
                found.append(Experiment(rev["name"], sha, params, yaml.safe_load(lock.stdout) or {}))
    return found


def _upstream(lock: dict, stage: str) -> set[str]:
    """``stage`` and every stage whose outputs it reads, directly or not, per dvc.lock."""
    stages = lock.get("stages") or {}
    outs = {name: [o["path"] for o in body.get("outs") or []] for name, body in stages.items()}
    seen, todo = set(), [stage]
    while todo:
        name = todo.pop()
        if name in seen or name not in stages:
            continue
        seen.add(name)
        for dep in stages[name].get("deps") or []:
            path = dep["path"]
            todo += [other for other, paths in outs.items()
                     if any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)]
    return seen


def ran_with_own_params(experiment: Experiment, stage: str) -> bool:
    """Whether ``stage`` and everything upstream of it ran with the experiment's params."""
    stages = experiment.lock.get("stages") or {}
    if stage not in stages:
        return False
    mine = flatten(experiment.params)
    for name in _upstream(experiment.lock, stage):
        recorded = flatten((stages[name].get("params") or {}).get("params.yaml") or {})
        if any(mine.get(key) != value for key, value in recorded.items()):
            return False
    return True


SCORING_STAGES = ("evaluate@", "ensemble@")  # a variant's, an ensemble's


def outputs_of(name: str, stages: dict, part: str = "oof") -> tuple[str, str, str]:
    """(the stage of ``stages`` (dvc.lock's) that scores ``name``, its scored faces file for ``part``, its
    figures file): a variant's evaluate stage, or an ensemble's stage."""
    stage = next((s + name for s in SCORING_STAGES if s + name in stages), f"evaluate@{name}")
    return stage, f"results/eval/{name}/{PARTS[part]}", f"results/metrics/{name}.json"


def read_output(repo: Path, experiment: Experiment, path: str) -> str | None:
    """A stage output's text as the experiment left it, or None where it has no such file."""
    import dvc.api  # seconds to import: only once experiments are being read
    from dvc.exceptions import PathMissingError

    try:
        return dvc.api.read(path, repo=str(repo), rev=experiment.rev)
    except PathMissingError:
        return None


def settings_of(experiment: Experiment, defaults: dict[str, Any]) -> dict[str, Any]:
    """The experiment's params, flat; a key it lacks (a knob added to params.yaml after it ran) counts
    as params.yaml's value: the experiment ran with the behaviour that value keeps."""
    return {**defaults, **flatten(experiment.params)}


def recipe_of(experiment: Experiment, defaults: dict[str, Any], varying: set[str]) -> str:
    """``key=value, ...`` for the varying keys where the experiment differs from params.yaml."""
    mine = settings_of(experiment, defaults)
    changes = [f"{key}={_show(mine.get(key))}" for key in sorted(varying) if mine.get(key) != defaults.get(key)]
    return ", ".join(changes) or DEFAULT


def _show(value: Any) -> str:
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value)


@dataclass
class Scored:
    """A recipe's scored name: its scored faces and training CPU seconds per replicate."""

    faces: dict[tuple, ScoredFaces] = field(default_factory=dict)
    cpu_seconds: dict[tuple, float] = field(default_factory=dict)
    experiments: dict[tuple, str] = field(default_factory=dict)


def gather(repo: Path, experiments: list[Experiment], defaults: dict[str, Any],
           names: list[str] | None = None, part: str = "oof") -> tuple[dict[tuple[str, str], Scored], dict[str, Any]]:
    """{(recipe, name): Scored} over the experiments, and the context (keys all of them set alike)."""
    flat = [settings_of(e, defaults) for e in experiments]
    keys = set().union(*flat) - set(REPLICATE_KEYS) if flat else set()
    varying = {k for k in keys if len({f.get(k) for f in flat}) > 1}
    context = {k: flat[0].get(k) for k in sorted(keys - varying) if flat[0].get(k) != defaults.get(k)}
    results: dict[tuple[str, str], Scored] = {}
    for experiment in experiments:
        recipe = recipe_of(experiment, defaults, varying)
        stages = experiment.lock.get("stages") or {}
        candidates = names or [stage.split("@", 1)[1] for stage in stages if stage.startswith(SCORING_STAGES)]
        replicate = experiment.replicate
        for name in candidates:
            stage, scores_path, figures_path = outputs_of(name, stages, part)
            if not ran_with_own_params(experiment, stage):
                continue
            scored = results.setdefault((recipe, name), Scored())
            if replicate in scored.faces:
                print(f"warning: {recipe} / {name}: replicate {show_replicate(replicate)} ran twice "
                      f"({scored.experiments[replicate]}, {experiment.name}); keeping the first", file=sys.stderr)
                continue
            text = read_output(repo, experiment, scores_path)
            if text is None:  # an experiment of an older pipeline: nothing scored there
                continue
            scored.faces[replicate] = read_scored_faces(text, f"{experiment.name}:{scores_path}")
            metrics = json.loads(read_output(repo, experiment, figures_path) or "{}")
            scored.cpu_seconds[replicate] = float(metrics.get("train_cpu_seconds") or 0.0)
            scored.experiments[replicate] = experiment.name
    return results, context


def show_replicate(replicate: tuple) -> str:
    """A replicate as the table names it: test fold / training seed."""
    return "/".join(map(str, replicate))


def compare(results: dict[tuple[str, str], Scored], baseline: tuple[str, str]) -> list[dict]:
    """One row per (recipe, name): mean HTER over its replicates in common with the baseline, the
    paired difference from the baseline with its interval, and the mean training CPU seconds."""
    if baseline not in results:
        known = ", ".join(f"{r} / {n}" for r, n in sorted(results)) or "none"
        raise FaceclsError(f"no experiment scored the baseline {baseline[0]} / {baseline[1]} (found: {known})")
    base = results[baseline]
    rows = []
    for (recipe, name), scored in sorted(results.items()):
        common = sorted(set(scored.faces) & set(base.faces))
        if not common:
            continue
        paired = paired_difference(scored.faces, base.faces)
        rows.append({"recipe": recipe, "name": name, "baseline": (recipe, name) == baseline, **paired,
                     "verdict": "baseline" if (recipe, name) == baseline else verdict(paired["ci95"]),
                     "cpu_seconds": sum(scored.cpu_seconds[f] for f in common) / len(common),
                     "experiments": [scored.experiments[f] for f in common]})
    return sorted(rows, key=lambda r: (not r["baseline"], r["hter"]))


def rows_markdown(rows: list[dict], context: dict[str, Any], part: str = "oof") -> str:
    figure = "out-of-fold" if part == "oof" else "test"
    lines = [f"| recipe | scored | replicates (test fold/seed) | mean {figure} HTER | difference from the baseline "
             "[paired 95 % interval] | verdict | training CPU s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        folds = ", ".join(map(show_replicate, r["replicates"]))
        difference = "—" if r["baseline"] else f"{r['difference']:+.4f} [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"
        lines.append(f"| {r['recipe']} | {r['name']} | {folds} | {r['hter']:.4f} | {difference} | {r['verdict']} "
                     f"| {r['cpu_seconds']:.0f} |")
    if context:
        lines += ["", "Common to every experiment: " + ", ".join(f"{k}={_show(v)}" for k, v in context.items())]
    return "\n".join(lines) + "\n"


def grid_table(repo: Path, baseline_name: str, names: list[str] | None = None,
               all_commits: bool = False, params_path: Path | None = None,
               baseline_recipe: str = DEFAULT, part: str = "oof") -> tuple[list[dict], dict[str, Any]]:
    """Read the experiments of ``repo`` and compare every recipe's names with ``baseline_recipe``'s
    ``baseline_name`` (the default recipe's, unless told: two changes measured together compare
    with the change they share), on ``part``: out-of-fold faces or the test part."""
    from facecls.params import load_params

    defaults = flatten(load_params(params_path or repo / "params.yaml"))
    experiments = read_experiments(repo, all_commits)
    if not experiments:
        raise FaceclsError(f"{repo}: no finished experiments (queue them with `dvc exp run --queue -S ...`)")
    results, context = gather(repo, experiments, defaults, names, part)
    return compare(results, (baseline_recipe, baseline_name)), context
