"""The bare work each stage does, timed on the same data: the ceilings its figures are compared with.

The stdlib reading the archive's central directory and label file (check), the raw JPEG decode
rate of bytes already in memory (index), and reading and hashing files (DVC's own work)."""

from __future__ import annotations

import hashlib
import io
import multiprocessing as mp
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from facecls.tools.bench.measure import load_avg


def bare_listing(archive: str) -> None:
    """The check ceiling: zipfile reading the central directory and the label file, no checks."""
    with zipfile.ZipFile(archive) as zf:
        zf.read(next(name for name in zf.namelist() if name.endswith("label_train.txt")))


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
