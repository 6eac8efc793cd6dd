"""Measuring a command: wall and CPU time, the load, and the peak memory of its whole process
tree, sampled from /proc; and a trash that keeps deletions out of the measurements."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from facecls.tools.bench import MODULE, REPO


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def status_kb(pid: int | str) -> dict[str, int]:
    """Memory figures (kB) of /proc/<pid>/status; empty where there is no such process."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split())
        except (OSError, ValueError):
            pass
    return pids


class TreeSampler:
    """Samples the summed RSS, anonymous (private) RSS and mapped file pages of a process and its
    descendants. (wait4's ru_maxrss is no use here: Linux carries the parent's RSS at fork into the child's.)"""

    # Every 50 ms for the first seconds, where short stages reach their peak; then every 250 ms, so
    # that sampling a long training stage does not take its cores from it 20 times a second.
    FAST_S, FAST, SLOW = 5.0, 0.05, 0.25

    def __init__(self, pid: int) -> None:
        self.pid, self.started = pid, time.perf_counter()
        self.peak_kb = {"rss": 0, "anon": 0, "file": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = {"rss": 0, "anon": 0, "file": 0}
            for p in _tree(self.pid):
                s = status_kb(p)
                now["rss"] += s.get("VmRSS", 0)
                now["anon"] += s.get("RssAnon", 0)
                now["file"] += s.get("RssFile", 0)
            self.peak_kb = {k: max(v, now[k]) for k, v in self.peak_kb.items()}
            fast = time.perf_counter() - self.started < self.FAST_S
            self._stop.wait(self.FAST if fast else self.SLOW)

    def peaks_mb(self, prefix: str) -> dict[str, float]:
        """``{prefix}rss_mb``, ``{prefix}anon_mb`` and ``{prefix}file_mb``."""
        return {f"{prefix}{k}_mb": round(v / 1024, 1) for k, v in self.peak_kb.items()}

    def __enter__(self) -> TreeSampler:
        if Path("/proc").is_dir():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _run_sampled(cmd: list[str], **popen) -> tuple[int, resource.struct_rusage, TreeSampler]:
    """Run ``cmd`` to its end: its exit status, resource usage and the sampled tree's peaks."""
    proc = subprocess.Popen(cmd, **popen)
    with TreeSampler(proc.pid) as sampler:
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage, sampler


def _cpu_s(usage: resource.struct_rusage) -> float:
    return round(usage.ru_utime + usage.ru_stime, 2)


def run_measured(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                 log_path: Path | None = None) -> dict:
    """Run ``cmd``; wall time, exit status, CPU seconds and peak memory: the sum over its process
    tree (workers running side by side count together), sampled (``TreeSampler``)."""
    if env is None:  # the checkout being benchmarked, not whichever facecls is installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    load_before = load_avg()
    started = time.perf_counter()
    try:
        rc, usage, sampler = _run_sampled(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    finally:
        if log_path:
            out.close()
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 3), "rc": rc, "cpu_s": _cpu_s(usage), **sampler.peaks_mb("tree_peak_"),
            "load": [load_before, load_avg()]}


def process_started_at() -> float:
    """When this process began (epoch seconds, to a clock tick), launcher and imports included;
    ``time.time()`` where /proc does not say."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])  # since boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - max(age, 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def record_stage(log: str, cmd: list[str]) -> int:
    """Run ``cmd`` (a stage of the timed ``dvc repro``) and append its timing and peak memory
    to ``log`` as one JSON line; returns its exit status. ``wrapper_start`` is when this wrapper
    itself began: from there to ``start`` is the benchmark's time, not DVC's."""
    wrapper_start = process_started_at()
    start = time.time()
    rc, usage, sampler = _run_sampled(cmd)
    end = time.time()
    with open(log, "a") as f:
        f.write(json.dumps({"cmd": " ".join(cmd), "wrapper_start": wrapper_start, "start": start, "end": end,
                            "wall_s": round(end - start, 3),
                            "rc": rc, "cpu_s": _cpu_s(usage),
                            "maxrss_mb": round(usage.ru_maxrss / 1024, 1), **sampler.peaks_mb("peak_")}) + "\n")
    return rc


def record_dvc(out: str, args: list[str]) -> int:
    """Run DVC's command line in this process, as the ``dvc`` script does, and write to ``out`` the
    CPU seconds of the processes it waited for (the stages and their wrappers). This process's whole
    CPU, as its parent sees it, less those, is DVC's own: its start, teardown and threads included,
    and nothing of the stages' or the benchmark's."""
    from dvc.cli import main as dvc_main

    rc = dvc_main(args)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(out).write_text(json.dumps({"children_cpu_s": _cpu_s(children)}))
    return rc


def run_checked(what: str, cmd: list[str], log_path: Path, **kwargs) -> dict:
    """``run_measured``, raising with the end of the command's log if it fails."""
    result = run_measured(cmd, log_path=log_path, **kwargs)
    if result["rc"] != 0:
        tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
        raise RuntimeError(f"{what} failed with exit status {result['rc']}\n{tail}")
    return result


def bench_command(*args: str) -> list[str]:
    """The command line of one of the benchmark's internal sub-commands."""
    return [sys.executable, "-m", MODULE, *args]


class Trash:
    """Folders moved aside at once (one rename) and deleted when the run is over: deleting
    120,000 files takes minutes on a busy machine and would sit between the measurements."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, path: Path) -> None:
        if path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            os.replace(path, self.folder / f"{time.time_ns()}-{path.name}")

    def empty(self, wait: bool) -> None:
        """Delete everything put here (and leftovers of a killed run); in the background unless ``wait``."""
        if not self.folder.exists():
            return
        if wait:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        doomed = self.folder.with_name(f"{self.folder.name}-{time.time_ns()}")
        os.replace(self.folder, doomed)
        subprocess.Popen(["rm", "-rf", str(doomed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
