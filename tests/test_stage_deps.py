"""dvc.yaml sees the code each stage runs: every project file a stage script imports, directly
or not, lies under one of that stage's deps, so editing it reruns the stage."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import yaml

from tests.repo_copy import REPO, dvc, make_tiny_repo

PACKAGE = "facecls"


def module_file(module: str, root: Path = REPO) -> Path | None:
    """The file of a ``facecls`` module or package, or None for anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path, root: Path = REPO) -> set[Path]:
    """Project files that importing ``path`` runs: every import statement, also inside functions,
    and for ``a.b.c`` the package files of ``a`` and ``a.b`` too."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package of ``path``
                base = ".".join([*package[:len(package) - node.level + 1], *filter(None, [node.module])])
            modules = [base] + [f"{base}.{alias.name}" for alias in node.names]  # a name may be a module
        else:
            continue
        for module in modules:
            parts = module.split(".")
            found |= {f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i]), root))}
    return found


def code_run_by(script: Path, root: Path = REPO) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path, root))
    return seen


def stage_bodies(pipeline: dict):
    """(stage name, body) for every stage; a foreach stage's body is its ``do``."""
    for name, stage in pipeline["stages"].items():
        yield name, stage.get("do", stage)


def uncovered(pipeline: dict, root: Path = REPO) -> list[str]:
    """One line per project file a stage runs but does not depend on."""
    problems = []
    for name, body in stage_bodies(pipeline):
        scripts = [root / word for word in body["cmd"].split() if word.endswith(".py")]
        assert scripts, f"stage {name}: no script in its command"
        deps = [Path(dep if isinstance(dep, str) else next(iter(dep))) for dep in body.get("deps", [])]
        for path in sorted(set().union(*(code_run_by(s, root) for s in scripts))):
            relative = path.relative_to(root)
            if not any(relative == dep or dep in relative.parents for dep in deps):
                problems.append(f"stage {name}: runs {relative} but does not depend on it")
    return problems


def pipeline() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))


def test_every_stage_depends_on_the_code_it_runs():
    assert uncovered(pipeline()) == []


def test_a_dep_taken_out_of_dvc_yaml_is_named_with_the_stage_and_the_file():
    stripped = copy.deepcopy(pipeline())
    deps = stripped["stages"]["train"]["do"]["deps"]
    deps.remove("facecls/training")
    problems = uncovered(stripped)
    assert "stage train: runs facecls/training/loop.py but does not depend on it" in problems
    assert all(line.startswith("stage train: runs facecls/training/") for line in problems)


def test_the_tools_are_outside_what_any_stage_runs_or_depends_on():
    """Editing the benchmark or the demo generator reruns nothing."""
    tools = REPO / PACKAGE / "tools"
    for name, body in stage_bodies(pipeline()):
        scripts = [REPO / word for word in body["cmd"].split() if word.endswith(".py")]
        assert not any(tools in f.parents for s in scripts for f in code_run_by(s)), name
        deps = [Path(dep) for dep in body.get("deps", []) if isinstance(dep, str)]
        assert not any(dep in (Path(PACKAGE), Path(PACKAGE, "tools")) or Path(PACKAGE, "tools") in dep.parents
                       for dep in deps), name


def test_the_library_has_no_import_cycle():
    files = sorted((REPO / PACKAGE).rglob("*.py"))
    graph = {f: imported_files(f) - {f} for f in files}
    # A package's __init__ runs before its modules, so an edge into one's own package is no cycle.
    graph = {f: {g for g in targets if not (g.name == "__init__.py" and g.parent in f.parents)}
             for f, targets in graph.items()}
    state: dict[Path, str] = {}

    def visit(f: Path, path: list[Path]) -> None:
        state[f] = "open"
        for g in graph[f]:
            assert state.get(g) != "open", " -> ".join(str(p.relative_to(REPO)) for p in [*path, f, g])
            if g not in state:
                visit(g, [*path, f])
        state[f] = "done"

    for f in files:
        if f not in state:
            visit(f, [])


def test_editing_a_module_a_stage_imports_makes_dvc_rerun_that_stage(tmp_path):
    repo = make_tiny_repo(tmp_path, epochs=1, n_train=48, n_val=8)
    dvc(repo, "repro", "train@simplecnn")
    for module, stale, fresh in [
        ("facecls/data/labels.py", {"check", "index"}, {"train@simplecnn"}),
        ("facecls/evaluation/thresholds.py", {"train@simplecnn"}, {"check", "index"}),  # early stopping
        ("facecls/models/inference.py", {"train@simplecnn"}, {"check", "index"}),
    ]:
        path = repo / module
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\n# edited\n", encoding="utf-8")
        status = dvc(repo, "status", "check", "index", "train@simplecnn")
        listed = {line.rstrip(":") for line in status.splitlines() if line and not line.startswith((" ", "\t"))}
        assert stale <= listed and not fresh & listed, (module, status)
        path.write_text(original, encoding="utf-8")
    assert "changed" not in dvc(repo, "status", "check", "index", "train@simplecnn")
    # Bytecode Python writes beside the modules (unless PYTHONDONTWRITEBYTECODE) is not code the stage runs.
    (repo / "facecls" / "models" / "__pycache__").mkdir(exist_ok=True)
    (repo / "facecls" / "models" / "__pycache__" / "files.cpython-399.pyc").write_bytes(b"\x00bytecode")
    assert "changed" not in dvc(repo, "status", "check", "index", "train@simplecnn")


def test_the_comparing_plots_name_every_scored_variant():
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    plots = {name: spec for entry in pipeline()["plots"] if isinstance(entry, dict) for name, spec in entry.items()}
    roc = next(spec for name, spec in plots.items() if name.startswith("ROC"))
    loss = next(spec for name, spec in plots.items() if name.startswith("Training loss"))
    assert set(roc["y"]) == {f"results/eval/{v}/roc.json" for v in params["variants"]}
    assert set(loss["y"]) == {f"results/train/{v}/fold_0/plots/metrics/train_loss.tsv" for v in params["variants"]}
