"""The bare work each stage does, timed on the same data: the ceilings its figures are compared with.

The stdlib extraction of the archive (unzip), the raw JPEG decode rate of bytes already in
memory (index), and reading and hashing files (DVC's own work)."""

from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import os
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from facecls.tools.bench.measure import load_avg


def bare_unzip(archive: str, target: str) -> None:
    """The extraction ceiling: the stdlib reading each member and writing it, no checks."""
    made: set[str] = set()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            destination = os.path.join(target, info.filename)
            folder = destination if info.is_dir() else os.path.dirname(destination)
            if folder not in made:
                os.makedirs(folder, exist_ok=True)
                made.add(folder)
            if not info.is_dir():
                with open(destination, "wb") as f:
                    f.write(zf.read(info))


def _decode_worker(archive: str, names: list[str], barrier, queue) -> None:
    with zipfile.ZipFile(archive) as zf:
        blobs = [zf.read(name) for name in names]
    ring = np.empty((1024, 64, 64, 3), dtype=np.uint8)
    barrier.wait()
    started, cpu = time.perf_counter(), time.process_time()
    for i, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as img:
            ring[i % 1024] = np.asarray(img.convert("RGB"))
    queue.put((len(blobs), time.perf_counter() - started, time.process_time() - cpu))


def raw_decode_rate(archive: Path, workers: int) -> dict:
    """JPEG bytes already in memory, decoded by ``workers`` processes started together."""
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.endswith(".jpg")]
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    barrier, queue = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_decode_worker, args=(str(archive), names[w::workers], barrier, queue))
             for w in range(workers)]
    for p in procs:
        p.start()
    load_before = load_avg()
    barrier.wait()
    started = time.perf_counter()
    parts = [queue.get() for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    return {"images": len(names), "workers": workers, "wall_s": round(wall, 3),
            "rate": len(names) / wall, "cpu_s": round(sum(c for _, _, c in parts), 2),
            "load": [load_before, load_avg()], "per_worker_rate": [round(n / s, 1) for n, s, _ in parts]}


def md5_files(paths: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds to read and md5 every file: the floor of what DVC does to hash them."""
    started, cpu = time.perf_counter(), time.process_time()
    for path in paths:
        digest = hashlib.md5()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return time.perf_counter() - started, time.process_time() - cpu


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())
