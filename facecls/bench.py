"""Benchmark the pipeline at full size against the ceilings of the machine at hand.

``python -m facecls.bench`` (defaults: 100,000 train + 20,000 val images) does, in one run:

* draws (once, cached under ``bench/cache/``, keyed by size) an archive in the
  exercise layout: a few hundred demo faces, each image a cheap perturbation of
  one (flip, shift, gain, sensor noise), JPEG quality 95;
* times ``unzip`` and ``index`` (each in a subprocess: wall time, images/s, peak
  memory) beside their ceilings: a bare stdlib extraction, and the raw decode
  rate of the same JPEG bytes already in memory with as many processes as
  ``index`` uses;
* per model family, times the real ``train_one_epoch`` on the memory-mapped
  array (a bounded number of batches over random rows of the whole set) beside
  the bare model's forward + backward + optimizer step on an in-memory batch of
  the same size (channels_last, bf16 autocast on CUDA, as training does), and
  ``predict_logits`` beside the bare forward pass; pairs run back to back and
  the ratio is the median of the per-round ratios;
* measures peak memory while training on the 100k array;
* times ``dvc repro`` of unzip -> index -> train@simplecnn (one full epoch) in a
  temporary copy of the repository, each stage's command and DVC's own time
  between them, beside what the ceilings above predict;
* writes the figures, each with its ceiling and ratio, to a Markdown table and
  a JSON file.

Ratios are ``measured rate / ceiling rate`` (or ``ceiling time / measured time``):
1.0 means the pipeline runs as fast as the bare work, lower is slower.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
GEN_VERSION = 1          # bump when the generated images change, to invalidate cached archives
ROOT = "bench_faces/"
JPEG_QUALITY = 95        # like the exercise photos
DISTINCT_FACES = 384     # demo drawings; every image is a perturbed copy of one of them
GEN_CHUNK = 2000
# Targets from the issue: ratios to the ceiling, and the memory bound.
TARGET = {"unzip": 0.7, "index": 0.7, "train": 0.9, "predict": 0.9, "dvc": 0.7}
MEMORY_TARGET_GB = 3.0


# --------------------------------------------------------------------------- machine


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def machine_info(device: str) -> dict:
    import torch

    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    info = {"cores": cores, "cpu_count": os.cpu_count(), "cpu": model or platform.processor(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "torch": torch.__version__,
            "device": device, "load_at_start": list(map(lambda v: round(v, 2),
                                                                                os.getloadavg()))}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


# --------------------------------------------------------------------------- archive

_FACES: np.ndarray | None = None


def _draw(args: tuple[int, int, int]) -> list[tuple[np.ndarray, int]]:
    from facecls.demo import demo_image

    seed, start, stop = args
    out = []
    for index in range(start, stop):
        photo, label = demo_image(seed, "train", index + 1)
        out.append((np.asarray(photo, dtype=np.uint8), label))
    return out


def _init_faces(faces: np.ndarray) -> None:
    global _FACES
    _FACES = faces


def _render(args: tuple[int, int, int, int]) -> tuple[list[bytes], np.ndarray]:
    """JPEG bytes of images [start, stop) of a split, and which face each one copies."""
    from PIL import Image

    seed, split, start, stop = args
    faces = _FACES
    rng = np.random.default_rng([seed, split, start])
    n = stop - start
    which = rng.integers(len(faces), size=n)
    padded = np.pad(faces[which], ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
    dx, dy = rng.integers(0, 7, size=n), rng.integers(0, 7, size=n)
    flip = rng.random(n) < 0.5
    gain = rng.uniform(0.85, 1.15, size=(n, 1, 1, 1)).astype(np.float32)
    bias = rng.uniform(-15, 15, size=(n, 1, 1, 1)).astype(np.float32)
    noise = rng.normal(0, 3, size=(n, 64, 64, 3)).astype(np.float32)
    blobs = []
    for i in range(n):
        img = padded[i, dy[i]:dy[i] + 64, dx[i]:dx[i] + 64]
        if flip[i]:
            img = img[:, ::-1]
        pixels = np.clip(img * gain[i] + bias[i] + noise[i], 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
        blobs.append(buffer.getvalue())
    return blobs, which


def make_archive(path: Path, n_train: int, n_val: int, *, seed: int = 2024, workers: int = 0) -> dict:
    """Write a zip in the exercise layout with ``n_train`` labelled and ``n_val`` unlabelled faces."""
    from facecls.atomic import atomic_path
    from facecls.demo import zip_entry

    workers = workers or os.cpu_count() or 1
    n_faces = min(DISTINCT_FACES, n_train + n_val)
    started = time.perf_counter()
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        step = -(-n_faces // (workers * 4))
        drawn = [face for part in pool.map(_draw, [(seed, s, min(s + step, n_faces))
                                                   for s in range(0, n_faces, step)]) for face in part]
    faces = np.stack([f for f, _ in drawn])
    face_labels = np.array([label for _, label in drawn], dtype=np.uint8)
    labels: list[int] = []
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w") as archive, \
            ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_faces, initargs=(faces,)) as pool:
        archive.writestr(zip_entry(ROOT), b"")
        for code, (split, count) in enumerate((("train", n_train), ("val", n_val))):
            archive.writestr(zip_entry(f"{ROOT}{split}_img/"), b"")
            jobs = [(seed, code, s, min(s + GEN_CHUNK, count)) for s in range(0, count, GEN_CHUNK)]
            number = 0
            for blobs, which in pool.map(_render, jobs):
                for blob in blobs:
                    number += 1
                    archive.writestr(zip_entry(f"{ROOT}{split}_img/{number:06d}.jpg"), blob)
                if split == "train":
                    labels.extend(int(v) for v in face_labels[which])
            if split == "train":
                archive.writestr(zip_entry(f"{ROOT}label_train.txt"), "".join(f"{v}\n" for v in labels))
    return {"seconds": round(time.perf_counter() - started, 1), "distinct_faces": n_faces,
            "bytes": path.stat().st_size, "class_0": labels.count(0), "class_1": labels.count(1)}


def cached_archive(cache_dir: Path, n_train: int, n_val: int, workers: int, log) -> tuple[Path, dict]:
    path = cache_dir / f"faces-{n_train}x{n_val}-q{JPEG_QUALITY}-v{GEN_VERSION}.zip"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        log(f"archive: cached {path} ({meta['bytes'] / 1e6:.0f} MB)")
        return path, {**meta, "cached": True}
    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"archive: drawing {n_train} + {n_val} images into {path} ...")
    meta = make_archive(path, n_train, n_val, workers=workers)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"archive: {meta['bytes'] / 1e6:.0f} MB in {meta['seconds']} s")
    return path, {**meta, "cached": False}


# --------------------------------------------------------------------------- subprocesses and memory


def _status_kb(pid: int | str) -> dict[str, int]:
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
    """Samples the summed RSS and anonymous RSS of a process and its descendants."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = self.peak_anon_kb = self.peak_file_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = anon = file = 0
            for p in _tree(self.pid):
                s = _status_kb(p)
                rss += s.get("VmRSS", 0)
                anon += s.get("RssAnon", 0)
                file += s.get("RssFile", 0)
            self.peak_rss_kb, self.peak_anon_kb = max(self.peak_rss_kb, rss), max(self.peak_anon_kb, anon)
            self.peak_file_kb = max(self.peak_file_kb, file)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        if Path("/proc").is_dir():
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_measured(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                 log_path: Path | None = None, timeout: float | None = None) -> dict:
    """Run ``cmd``; wall time, exit status, CPU seconds and peak memory: the sum over its process
    tree (workers running side by side count together), sampled every 50 ms from /proc.
    (wait4's ru_maxrss is no use here: Linux carries the parent's RSS at fork into the child's.)"""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    load_before = load_avg()
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with TreeSampler(proc.pid) as sampler:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    proc.kill()
                time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log_path:
            out.close()
    wall = time.perf_counter() - started
    return {"wall_s": round(wall, 3), "rc": proc.returncode, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "tree_peak_rss_mb": round(sampler.peak_rss_kb / 1024, 1),
            "tree_peak_anon_mb": round(sampler.peak_anon_kb / 1024, 1),
            "tree_peak_file_mb": round(sampler.peak_file_kb / 1024, 1), "load": [load_before, load_avg()]}


def _check_rc(what: str, result: dict, log_path: Path | None) -> None:
    if result["rc"] != 0:
        tail = log_path.read_text(errors="replace")[-3000:] if log_path and log_path.exists() else ""
        raise RuntimeError(f"{what} failed with exit status {result['rc']}\n{tail}")


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "facecls.bench", *args]


# --------------------------------------------------------------------------- ceilings: extraction, decode, hashing


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
    from PIL import Image

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


# --------------------------------------------------------------------------- training and prediction probe

DEFAULT_TRAIN = {"batch_size": 128, "lr": 0.002, "lr_factor": 0.1, "optimizer": "adamw", "weight_decay": 5e-4,
                 "schedule": "onecycle", "label_smoothing": 0.0, "seed": 0, "threads": 0,
                 "augment": {"flip": True, "shift": 0.06, "scale": 0.08, "color": 0.1}}


def train_config(family: str, batch_size: int | None) -> dict:
    """The project's train knobs from params.yaml (defaults if absent), for ``family`` from scratch."""
    import yaml

    train = dict(DEFAULT_TRAIN)
    params_path = REPO / "params.yaml"
    if params_path.exists():
        train.update((yaml.safe_load(params_path.read_text()) or {}).get("train") or {})
    config = {**train, "variant": f"bench-{family}", "arch": family, "mode": "full", "weights": "random",
              "weights_fallback": "random", "weighted": False, "pos_weight": None, "stem_stride": 1}
    if batch_size:
        config["batch_size"] = batch_size
    return config


def _peak_sampler():
    """A thread tracking this process's peak private (anonymous) memory, where a float copy of the
    set would show, and its peak of mapped file pages (the memory-mapped array, the libraries)."""
    peak = {"anon_kb": 0, "file_kb": 0}
    stop = threading.Event()

    def run():
        while not stop.is_set():
            now = _status_kb("self")
            peak["anon_kb"] = max(peak["anon_kb"], now.get("RssAnon", 0))
            peak["file_kb"] = max(peak["file_kb"], now.get("RssFile", 0))
            stop.wait(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return peak, stop, thread


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def probe(prepared: Path, family: str, *, batches: int | None, pred_batches: int | None, rounds: int,
          device_name: str, batch_size: int | None, pred_batch_size: int = 512) -> dict:
    """Pipeline vs bare rates for one model family, run in its own process."""
    import torch
    import torch.nn.functional as F

    from facecls.augment import augment
    from facecls.data import LabelledSet, load_labelled, load_unlabelled
    from facecls.device import pick_device, set_cpu_threads
    from facecls.inference import batch_to_input, predict_logits
    from facecls.models import build_model, parameter_groups
    from facecls.training import make_optimizer, train_one_epoch

    peak, stop, thread = _peak_sampler()
    device = pick_device(device_name)
    cuda = device.type == "cuda"
    config = train_config(family, batch_size)
    bs = config["batch_size"]
    batches = batches or (50 if cuda else max(2, 256 // bs))  # about 256 images a side a round on CPU
    pred_batches = pred_batches or (10 if cuda else 1)
    rounds = rounds or (4 if cuda else 8)
    # The threads train_variant would use (train.threads, 0: all cores), for both sides.
    threads = set_cpu_threads(config["threads"]) if device.type == "cpu" else torch.get_num_threads()
    data = load_labelled(prepared)
    val = load_unlabelled(prepared).images
    torch.manual_seed(0)
    model, _ = build_model(family, mode="full", weights="random")
    model.to(device, memory_format=torch.channels_last)
    groups = parameter_groups(model, config["lr"], config["lr_factor"])
    for group in groups:
        group["base_lr"] = group["lr"]
    optimizer = make_optimizer(config["optimizer"], groups, config["weight_decay"])
    device_images = None
    if cuda:  # as train_variant does: the whole uint8 set on the GPU
        device_images = (torch.from_numpy(np.ascontiguousarray(data.images)).to(device),
                         torch.from_numpy(data.labels).to(device))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    rng = np.random.default_rng(0)
    generator = torch.Generator(device=device).manual_seed(1)
    train_rows = data.train_rows
    batches = max(1, min(batches, len(train_rows) // bs))

    def subset(n_batches: int) -> LabelledSet:
        # Random rows spread over the whole memory-mapped set, as an epoch reads them.
        holdout = np.ones(len(data.labels), dtype=bool)
        holdout[rng.choice(train_rows, size=min(n_batches * bs, len(train_rows)), replace=False)] = False
        return LabelledSet(data.images, data.labels, holdout)

    def timed(work, n_images: int) -> tuple[float, float]:
        """Images per wall second and per CPU second (all threads of this process) of ``work()``.
        CPU time barely moves with other users' load; wall time moves a lot on shared cores."""
        _sync(device)
        started, cpu = time.perf_counter(), time.process_time()
        work()
        _sync(device)
        return n_images / (time.perf_counter() - started), n_images / max(time.process_time() - cpu, 1e-9)

    def pipeline_train(n_batches: int) -> tuple[float, float]:
        part = subset(n_batches)
        return timed(lambda: train_one_epoch(
            model, optimizer, part, device_images, device, config, rng=rng, generator=generator, step=0,
            total_steps=10 * n_batches, pos_weight=None, desc=f"bench {family}"), n_batches * bs)

    x = torch.rand(bs, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (bs,), device=device).float()

    def bare_train(n_batches: int) -> tuple[float, float]:
        def steps():
            model.train()
            for _ in range(n_batches):
                with autocast:
                    logits = model(x).float()
                loss = F.binary_cross_entropy_with_logits(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return timed(steps, n_batches * bs)

    def input_only(n_batches: int) -> float:
        """Seconds per batch of gathering rows, uint8 -> float, augmenting: the loop's own work."""
        aug = config["augment"]
        rows = np.sort(rng.choice(train_rows, size=bs, replace=False))
        _sync(device)
        started = time.perf_counter()
        for _ in range(n_batches):
            if device_images is not None:
                images = device_images[0][torch.from_numpy(rows).to(device)]
            else:
                images = data.images[rows]
            batch_to_input(images, device, augment=lambda t: augment(
                t, flip=aug["flip"], shift=aug["shift"], scale=aug["scale"], color=aug["color"],
                generator=generator))
        _sync(device)
        return (time.perf_counter() - started) / n_batches

    n_pred = min(len(val), pred_batches * pred_batch_size)
    xp = torch.rand(pred_batch_size, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    pred_offset = [0]

    def pipeline_predict() -> tuple[float, float]:
        start = pred_offset[0] if pred_offset[0] + n_pred <= len(val) else 0  # fresh rows each round
        pred_offset[0] = start + n_pred
        images = val[start:start + n_pred]
        return timed(lambda: predict_logits(model, images, device, batch_size=pred_batch_size), n_pred)

    def bare_predict() -> tuple[float, float]:
        @torch.inference_mode()
        def forward():
            model.eval()
            full, rest = divmod(n_pred, pred_batch_size)
            for size in [pred_batch_size] * full + ([rest] if rest else []):
                with autocast:
                    model(xp[:size]).float().cpu()
        return timed(forward, n_pred)

    # Memory as a whole epoch leaves it: every page of the memory map read once (random rows,
    # batch by batch) and the held-out rows copied, as train_variant's holdout_metrics does.
    started = time.perf_counter()
    order = rng.permutation(train_rows)
    for b in range(0, len(order) - bs + 1, bs):
        data.images[np.sort(order[b:b + bs])]
    held_out = data.images[data.holdout_rows]
    epoch_walk_s = time.perf_counter() - started
    del held_out
    # Warm-up: allocator, thread pools, cuDNN autotuning.
    warm = 1 if batches <= 2 else 2
    bare_train(warm)
    pipeline_train(warm)
    predict_logits(model, val[:min(len(val), pred_batch_size)], device, batch_size=pred_batch_size)
    bare_predict()
    # Short pairs, back to back, the order swapped every round: on shared cores the load
    # drifts, and a pair sees nearly the same load.
    train_rounds, pred_rounds = [], []
    for r in range(rounds):
        load = load_avg()
        if r % 2:
            pipe, bare = pipeline_train(batches), bare_train(batches)
        else:
            bare, pipe = bare_train(batches), pipeline_train(batches)
        train_rounds.append({"bare": bare[0], "pipeline": pipe[0], "bare_cpu": bare[1], "pipeline_cpu": pipe[1],
                             "load": load})
        if r % 2:
            pipe, bare = pipeline_predict(), bare_predict()
        else:
            bare, pipe = bare_predict(), pipeline_predict()
        pred_rounds.append({"bare": bare[0], "pipeline": pipe[0], "bare_cpu": bare[1], "pipeline_cpu": pipe[1],
                            "load": load_avg()})
    input_s = input_only(20 if cuda else 4)
    stop.set()
    thread.join()

    def summary(rows: list[dict]) -> dict:
        return {"rate": statistics.median(r["pipeline"] for r in rows),
                "ceiling": statistics.median(r["bare"] for r in rows),
                "ceiling_per_cpu_s": statistics.median(r["bare_cpu"] for r in rows),
                "ratio": statistics.median(r["pipeline"] / r["bare"] for r in rows),
                # the same from total times (each round does the same work on both sides)
                "ratio_of_totals": sum(1 / r["bare"] for r in rows) / sum(1 / r["pipeline"] for r in rows),
                # images per CPU second: what the pipeline adds, nearly free of other users' load
                # (not on CUDA, where the CPU mostly waits for the GPU)
                "cpu_ratio": None if cuda else statistics.median(r["pipeline_cpu"] / r["bare_cpu"] for r in rows),
                "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rows]}

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"family": family, "device": str(device), "threads": threads, "batch_size": bs, "batches": batches,
            "train": summary(train_rounds), "input_seconds_per_batch": round(input_s, 4),
            "epoch_walk_s": round(epoch_walk_s, 2),
            "predict": {**summary(pred_rounds), "images": n_pred, "batch_size": pred_batch_size},
            "set_shape": list(data.images.shape), "set_is_memmap": isinstance(data.images, np.memmap),
            "peak_anon_mb": round(peak["anon_kb"] / 1024, 1), "peak_file_mb": round(peak["file_kb"] / 1024, 1),
            # VmHWM: this process's own high-water mark (its memory since exec, unlike ru_maxrss)
            "peak_rss_mb": round(_status_kb("self").get("VmHWM", usage.ru_maxrss) / 1024, 1)}


# --------------------------------------------------------------------------- dvc repro


def _wrap(argv: list[str]) -> int:
    """``_wrap LOG -- cmd ...``: run cmd, append its timing and peak memory to LOG as one JSON line."""
    log, cmd = argv[0], argv[argv.index("--") + 1:]
    start = time.time()
    proc = subprocess.Popen(cmd)
    with TreeSampler(proc.pid) as sampler:
        _, status, usage = os.wait4(proc.pid, 0)
    end = time.time()
    rc = os.waitstatus_to_exitcode(status)
    with open(log, "a") as f:
        f.write(json.dumps({"cmd": " ".join(cmd), "start": start, "end": end, "wall_s": round(end - start, 3),
                            "rc": rc, "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                            "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
                            "peak_rss_mb": round(sampler.peak_rss_kb / 1024, 1),
                            "peak_anon_mb": round(sampler.peak_anon_kb / 1024, 1),
                            "peak_file_mb": round(sampler.peak_file_kb / 1024, 1)}) + "\n")
    return rc


def _fraction(argv: list[str]) -> None:
    """``_fraction F stages/train.py ARGS``: run the stage script with each epoch cut to a
    fraction F of the training rows (random rows over the whole set); the held-out part
    and everything else stay as they are. Only used in the benchmark's copy of the repo."""
    import runpy

    from facecls import training
    from facecls.data import LabelledSet

    fraction, script = float(argv[0]), argv[1]
    full_epoch = training.train_one_epoch

    def bounded(model, optimizer, data, *args, **kwargs):
        rows = data.train_rows
        keep = np.random.default_rng(0).choice(rows, size=max(1, int(round(len(rows) * fraction))), replace=False)
        holdout = np.ones_like(data.holdout)
        holdout[keep] = False
        return full_epoch(model, optimizer, LabelledSet(data.images, data.labels, holdout), *args, **kwargs)

    training.train_one_epoch = bounded
    sys.argv = [script, *argv[2:]]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def dvc_repro(archive: Path, work: Path, *, epochs: int, fraction: float, batch_size: int | None, device: str,
              log, trash: Trash) -> dict:
    """``dvc repro train@simplecnn`` from nothing in a copy of the repository, then once more (no-op)."""
    import yaml

    repo = work / "dvc-repo"
    trash.put(repo)
    repo.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("facecls", "stages"):
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    for name in (".dvcignore",):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, repo / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["archive"] = str(archive.resolve())
    params["train"]["epochs"] = epochs
    params["train"]["device"] = device
    if batch_size:
        params["train"]["batch_size"] = batch_size
    params["variants"] = {"simplecnn": {"arch": "simplecnn"}}
    params["predict"]["variant"] = "best"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage_log = work / "dvc-stages.jsonl"
    stage_log.unlink(missing_ok=True)
    dvc_yaml = (REPO / "dvc.yaml").read_text()
    if fraction < 1:
        dvc_yaml = dvc_yaml.replace("cmd: python stages/train.py",
                                    f"cmd: python -m facecls.bench _fraction {fraction} stages/train.py")
    wrapped, count = re.subn(r"cmd: python ", f"cmd: python -m facecls.bench _wrap {stage_log} -- python ", dvc_yaml)
    if not count:
        raise RuntimeError("dvc.yaml: no `cmd: python ...` stage commands to time")
    (repo / "dvc.yaml").write_text(wrapped)
    env = {**os.environ, "PYTHONPATH": str(repo), "DVC_NO_ANALYTICS": "1"}
    dvc = shutil.which("dvc") or "dvc"
    init = subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=env, capture_output=True, text=True)
    if init.returncode:
        raise RuntimeError(f"dvc init failed: {init.stderr.strip()}")
    out_log = work / "dvc-repro.log"
    out_log.unlink(missing_ok=True)
    log(f"dvc repro train@simplecnn (unzip, index, {epochs} epoch(s) of {fraction:.0%} of the rows) ...")
    begin = time.time()
    first = run_measured([dvc, "repro", "train@simplecnn"], cwd=repo, env=env, log_path=out_log)
    finish = time.time()
    _check_rc("dvc repro", first, out_log)
    log(f"dvc repro: {first['wall_s']:.0f} s; again with nothing to do ...")
    noop = run_measured([dvc, "repro", "train@simplecnn"], cwd=repo, env=env, log_path=out_log)
    _check_rc("dvc repro (no-op)", noop, out_log)
    stages = [json.loads(line) for line in stage_log.read_text().splitlines() if line.strip()]
    names = []
    for s in stages:
        script = re.search(r"stages/(\w+)\.py(?: (\S+))?", s["cmd"])
        names.append(f"{script.group(1)}@{script.group(2)}" if script and script.group(2)
                     else script.group(1) if script else s["cmd"])
    timeline, previous = [], begin
    for name, s in zip(names, stages):
        timeline.append({"stage": name, "dvc_before_s": round(s["start"] - previous, 2), **s})
        previous = s["end"]
    train_metrics = {}
    metrics_file = repo / "results" / "train" / "simplecnn" / "metrics.json"
    if metrics_file.exists():
        train_metrics = json.loads(metrics_file.read_text())
    return {"first": first, "noop": noop, "stages": timeline, "dvc_after_s": round(finish - previous, 2),
            "dvc_overhead_s": round((finish - begin) - sum(s["wall_s"] for s in stages), 2),
            "epochs": epochs, "fraction": fraction, "train_metrics": train_metrics, "repo": str(repo)}


# --------------------------------------------------------------------------- the run


def row(name: str, measured: str, ceiling: str, ratio: float | None, target: str, holds: bool | None,
        load, *, cpu_ratio: float | None = None, threshold: float | None = None, **extra) -> dict:
    """One line of the table. With a ``threshold``, ``holds`` is judged on the CPU-time ratio when
    there is one: on cores shared with other work, wall time swings with their load."""
    if threshold is not None:
        judged = cpu_ratio if cpu_ratio is not None else ratio
        holds = None if judged is None else judged >= threshold
    return {"name": name, "measured": measured, "ceiling": ceiling,
            "ratio": None if ratio is None else round(ratio, 3),
            "cpu_ratio": None if cpu_ratio is None else round(cpu_ratio, 3), "target": target, "holds": holds,
            "load": load, **extra}


def _rate(v: float) -> str:
    return f"{v:,.0f} img/s"


def run_benchmark(args, log) -> dict:
    from facecls.device import pick_device

    device = str(pick_device(args.device))
    cache = Path(args.cache_dir)
    work = cache / f"work-{args.train}x{args.val}"
    trash = Trash(cache / ".trash")
    trash.put(work)
    work.mkdir(parents=True)
    logs = work / "logs"
    logs.mkdir()
    workers = args.workers or os.cpu_count() or 1
    config = train_config("simplecnn", args.batch_size)
    results: dict = {"machine": machine_info(device), "sizes": {"train": args.train, "val": args.val},
                     "train_config": {k: config[k] for k in ("batch_size", "threads", "optimizer", "augment")},
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "rows": []}
    rows = results["rows"]
    t0 = time.perf_counter()
    archive, meta = cached_archive(cache, args.train, args.val, workers, log)
    results["archive"] = {"path": str(archive), **meta}
    n_images = args.train + args.val

    # --- unzip: the bare stdlib extraction before and after the stage code, back to back.
    def bare_extraction(n: int) -> dict:
        result = run_measured(_python("_bare_unzip", str(archive), str(work / f"bare-unzip-{n}")),
                              log_path=logs / "bare.log")
        _check_rc("bare unzip", result, logs / "bare.log")
        trash.put(work / f"bare-unzip-{n}")
        return result

    log("unzip: bare extraction ceiling, extract_archive, bare extraction again ...")
    bare_before = bare_extraction(1)
    raw = work / "raw"
    unzip = run_measured([sys.executable, "-c", "import sys; from facecls.archive import extract_archive; "
                          "extract_archive(sys.argv[1], sys.argv[2])", str(archive), str(raw)],
                         log_path=logs / "unzip.log")
    _check_rc("unzip", unzip, logs / "unzip.log")
    bare_after = bare_extraction(2)
    bare_s = (bare_before["wall_s"] + bare_after["wall_s"]) / 2
    bare_cpu = (bare_before["cpu_s"] + bare_after["cpu_s"]) / 2
    results["unzip"] = {"stage": unzip, "ceiling": [bare_before, bare_after], "ceiling_s": bare_s,
                        "ceiling_cpu_s": bare_cpu}
    rows.append(row("unzip: extract_archive", f"{_rate(n_images / unzip['wall_s'])} ({unzip['wall_s']:.1f} s, "
                    f"{unzip['cpu_s']:.1f} s CPU, peak {unzip['tree_peak_rss_mb']:.0f} MB)",
                    f"stdlib read+write loop, before and after: {_rate(n_images / bare_s)} ({bare_cpu:.1f} s CPU)",
                    bare_s / unzip["wall_s"], f"≥ {TARGET['unzip']} (I/O)", None,
                    [bare_before["load"], unzip["load"], bare_after["load"]],
                    cpu_ratio=bare_cpu / max(unzip["cpu_s"], 1e-9), threshold=TARGET["unzip"]))

    # --- index: raw decode ceiling before and after, the stage between.
    log(f"index: raw decode ceiling ({workers} processes) ...")
    decode_before = raw_decode_rate(archive, workers)
    prepared = work / "prepared"
    log("index: build_index ...")
    index = run_measured([sys.executable, "-c", "import sys; from facecls.prepare import build_index; "
                          "build_index(sys.argv[1], sys.argv[2], 0.2, 42)", str(raw), str(prepared)],
                         log_path=logs / "index.log")
    _check_rc("index", index, logs / "index.log")
    decode_after = raw_decode_rate(archive, workers)
    decode_rate = (decode_before["rate"] + decode_after["rate"]) / 2
    decode_cpu = (decode_before["cpu_s"] + decode_after["cpu_s"]) / 2
    index_rate = n_images / index["wall_s"]
    results["index"] = {"stage": index, "ceiling": [decode_before, decode_after], "ceiling_rate": decode_rate,
                        "ceiling_cpu_s": decode_cpu}
    rows.append(row("index: build_index (decode to uint8 .npy)",
                    f"{_rate(index_rate)} ({index['wall_s']:.1f} s, {index['cpu_s']:.1f} s CPU, "
                    f"peak {index['tree_peak_rss_mb']:.0f} MB over {workers + 1} processes)",
                    f"raw decode of the bytes in memory, {workers} processes, before and after: "
                    f"{_rate(decode_rate)} ({decode_cpu:.1f} s CPU)",
                    index_rate / decode_rate, f"≥ {TARGET['index']}", None,
                    [decode_before["load"], index["load"], decode_after["load"]],
                    cpu_ratio=decode_cpu / max(index["cpu_s"], 1e-9), threshold=TARGET["index"]))

    # --- hashing ceilings for DVC's own work.
    log("hashing ceilings (md5 of archive, data/raw files, prepared arrays; copy of arrays) ...")
    raw_files, prepared_files = all_files(raw), all_files(prepared)
    hashing = {"raw_files": len(raw_files), "prepared_bytes": sum(p.stat().st_size for p in prepared_files)}
    for name, files in (("archive", [archive]), ("raw", raw_files), ("prepared", prepared_files)):
        hashing[f"{name}_s"], hashing[f"{name}_cpu_s"] = md5_files(files)
    started, cpu = time.perf_counter(), time.process_time()
    copies = work / "copy-ceiling"
    copies.mkdir()
    for p in prepared_files:
        shutil.copyfile(p, copies / p.name)
    hashing["prepared_copy_s"], hashing["prepared_copy_cpu_s"] = time.perf_counter() - started, time.process_time() - cpu
    trash.put(copies)
    hashing = {k: round(v, 2) if isinstance(v, float) else v for k, v in hashing.items()}
    results["hashing"] = hashing
    trash.put(raw)  # the probes need only the arrays

    # --- training and prediction, one process per family.
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    results["families"] = {}
    for family in families:
        log(f"train/predict {family}: rounds of pipeline vs bare, back to back ...")
        out = work / f"probe-{family}.json"
        cmd = _python("_probe", str(prepared), family, str(out), "--device", args.device)
        for flag, value in (("--batches", args.batches), ("--pred-batches", args.pred_batches),
                            ("--batch-size", args.batch_size), ("--rounds", args.rounds)):
            if value:
                cmd += [flag, str(value)]
        run = run_measured(cmd, log_path=logs / f"probe-{family}.log")
        _check_rc(f"probe {family}", run, logs / f"probe-{family}.log")
        p = json.loads(out.read_text())
        p["process"] = run
        results["families"][family] = p
        tr, pr = p["train"], p["predict"]
        rows.append(row(f"train {family}: train_one_epoch on the memory-mapped {p['set_shape'][0]:,} array",
                        f"{_rate(tr['rate'])} (batch {p['batch_size']}, {p['threads']} thread(s), "
                        f"{len(tr['rounds'])} × {p['batches']} batches)",
                        f"bare fwd+bwd+step, in-memory batch: {_rate(tr['ceiling'])}", tr["ratio"],
                        f"≥ {TARGET['train']}", None, [r["load"] for r in tr["rounds"]],
                        cpu_ratio=tr["cpu_ratio"], threshold=TARGET["train"]))
        rows.append(row(f"predict {family}: predict_logits",
                        f"{_rate(pr['rate'])} ({len(pr['rounds'])} × {pr['images']:,} images, batch {pr['batch_size']})",
                        f"bare forward: {_rate(pr['ceiling'])}", pr["ratio"], f"≥ {TARGET['predict']}",
                        None, [r["load"] for r in pr["rounds"]], cpu_ratio=pr["cpu_ratio"],
                        threshold=TARGET["predict"]))
        peak = max(run["tree_peak_rss_mb"], p["peak_rss_mb"])
        rows.append(row(f"peak memory training {family} on the {p['set_shape'][0]:,}-image array",
                        f"{peak / 1024:.2f} GB RSS (private {p['peak_anon_mb'] / 1024:.2f} GB, "
                        f"mapped file pages {p['peak_file_mb'] / 1024:.2f} GB)",
                        "uint8 set memory-mapped: 1.23 GB per 100k", None, f"≤ {MEMORY_TARGET_GB:g} GB",
                        peak / 1024 <= MEMORY_TARGET_GB, run["load"]))

    # --- dvc repro
    if args.dvc:
        fraction = args.dvc_fraction or (1.0 if device.startswith("cuda") else 0.1)
        d = dvc_repro(archive, work, epochs=args.dvc_epochs, fraction=fraction, batch_size=args.batch_size,
                      device=args.device, log=log, trash=trash)
        results["dvc"] = d
        by_name = {s["stage"]: s for s in d["stages"]}
        n_holdout = int(round(args.train * 0.2))
        n_fit = int(round((args.train - n_holdout) * fraction))
        simple = results["families"].get("simplecnn")
        expect = {"unzip": bare_s, "index": n_images / decode_rate}
        expect_cpu = {"unzip": bare_cpu, "index": decode_cpu}
        if simple:
            bs = simple["batch_size"]
            expect["train@simplecnn"] = args.dvc_epochs * ((n_fit // bs) * bs / simple["train"]["ceiling"]
                                                           + n_holdout / simple["predict"]["ceiling"])
            if simple["train"]["cpu_ratio"] is not None:
                expect_cpu["train@simplecnn"] = args.dvc_epochs * (
                    (n_fit // bs) * bs / simple["train"]["ceiling_per_cpu_s"]
                    + n_holdout / simple["predict"]["ceiling_per_cpu_s"])
        for name, stage in by_name.items():
            ceiling, ceiling_cpu = expect.get(name), expect_cpu.get(name)
            target = TARGET["train"] if name.startswith("train") else TARGET[name] if name in TARGET else TARGET["dvc"]
            ratio = ceiling / stage["wall_s"] if ceiling else None
            cpu_ratio = ceiling_cpu / max(stage["cpu_s"], 1e-9) if ceiling_cpu else None
            what = {"unzip": "bare extraction", "index": "images / raw decode rate",
                    "train@simplecnn": "epoch / bare train rate + held-out / bare forward"}.get(name, "")
            rows.append(row(f"dvc repro: stage {name}" + (f" ({args.dvc_epochs} epoch of {fraction:.0%} of the rows)"
                                                          if name.startswith("train") else ""),
                            f"{stage['wall_s']:.1f} s, {stage['cpu_s']:.1f} s CPU (peak "
                            f"{stage.get('peak_rss_mb', 0) / 1024:.2f} GB RSS, private "
                            f"{stage.get('peak_anon_mb', 0) / 1024:.2f} GB)",
                            f"{ceiling:.1f} s, {ceiling_cpu or 0:.1f} s CPU ({what})" if ceiling else "—", ratio,
                            f"≥ {target}", None, d["first"]["load"], cpu_ratio=cpu_ratio, threshold=target))
        parts = ("archive", "raw", "prepared", "prepared_copy")
        hash_ceiling = sum(hashing[f"{k}_s"] for k in parts)
        hash_ceiling_cpu = sum(hashing[f"{k}_cpu_s"] for k in parts)
        gaps = ", ".join(f"{s['dvc_before_s']:.1f} s before {s['stage']}" for s in d["stages"])
        dvc_cpu = d["first"]["cpu_s"] - sum(s["cpu_s"] for s in d["stages"])
        d["dvc_overhead_cpu_s"] = round(dvc_cpu, 2)
        rows.append(row("dvc repro: DVC's own time (hashing, cache copy, lock)",
                        f"{d['dvc_overhead_s']:.1f} s, {dvc_cpu:.1f} s CPU ({gaps}, {d['dvc_after_s']:.1f} s after)",
                        f"{hash_ceiling:.1f} s, {hash_ceiling_cpu:.1f} s CPU (md5 of the archive, the "
                        f"{hashing['raw_files']:,} raw files and the arrays; arrays copied to the cache)",
                        hash_ceiling / d["dvc_overhead_s"] if d["dvc_overhead_s"] > 0 else None,
                        f"≥ {TARGET['dvc']}", None, d["first"]["load"],
                        cpu_ratio=hash_ceiling_cpu / max(dvc_cpu, 1e-9), threshold=TARGET["dvc"]))
        total_expect = sum(expect.values()) + hash_ceiling if simple else None
        rows.append(row("dvc repro: whole run, from nothing",
                        f"{d['first']['wall_s']:.1f} s", f"{total_expect:.1f} s (sum of the ceilings above)"
                        if total_expect else "—",
                        total_expect / d["first"]["wall_s"] if total_expect else None, "—", None, d["first"]["load"]))
        rows.append(row("dvc repro: again, nothing to do", f"{d['noop']['wall_s']:.1f} s", "—", None, "—", None,
                        d["noop"]["load"]))
        if not args.keep:
            trash.put(Path(d["repo"]))
    if not args.keep:
        trash.put(work / "prepared")
    trash.empty(wait=args.quick)
    results["machine"]["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _fmt_load(load) -> str:
    flat = []
    for item in load if isinstance(load, list) else [load]:
        flat.extend(item if isinstance(item, list) else [item])
    return "–".join(f"{v:.1f}" for v in (min(flat), max(flat))) if len(set(flat)) > 1 else f"{flat[0]:.1f}"


def render_markdown(results: dict, command: str) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {results['started']} "
        f"({results['sizes']['train']:,} train + {results['sizes']['val']:,} val images, "
        f"whole run {results['seconds'] / 60:.1f} min).",
        "",
        f"Machine: {m['cores']} usable cores ({m['cpu']}), {m['memory_gb']} GB RAM, "
        f"device {m['device']}{' (' + m['gpu'] + ')' if m.get('gpu') else ''}, torch {m['torch']}, "
        f"Python {m['python']}; training as params.yaml sets it: batch {results['train_config']['batch_size']}, "
        f"train.threads {results['train_config']['threads']} (0: all cores); load average (1, 5, 15 min) {', '.join(f'{v:.2f}' for v in m['load_at_start'])} "
        f"at start, {', '.join(f'{v:.2f}' for v in m.get('load_at_end', []))} at end.",
        "",
        "Ratio = measured rate / ceiling rate (or ceiling time / measured time), 1.0 = as fast as the bare work; "
        "each pair measured back to back in this one run. *ratio (wall)* compares elapsed times, *ratio (CPU)* the "
        "CPU seconds each side spent (all its threads and worker processes). On cores shared with other work the "
        "wall ratio swings with their load (the load column: 1-minute load average), the CPU ratio much less, so "
        "*holds* is judged on the CPU ratio where there is one (not on CUDA).",
        "",
        "| measurement | measured | ceiling | ratio (wall) | ratio (CPU) | target | holds | load |",
        "|---|---|---|---:|---:|---|---|---|",
    ]
    for r in results["rows"]:
        holds = "—" if r["holds"] is None else ("yes" if r["holds"] else "**no**")
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        cpu_ratio = "—" if r.get("cpu_ratio") is None else f"{r['cpu_ratio']:.2f}"
        lines.append(f"| {r['name']} | {r['measured']} | {r['ceiling']} | {ratio} | {cpu_ratio} | {r['target']} | "
                     f"{holds} | {_fmt_load(r['load'])} |")
    fam = results.get("families", {})
    if fam:
        lines += ["", "Per batch, the training loop's own input work (gather rows from the memory map, "
                  "uint8 → float, augment, normalise): "
                  + ", ".join(f"{name} {p['input_seconds_per_batch'] * 1000:.1f} ms vs "
                              f"{p['batch_size'] / p['train']['ceiling'] * 1000:.1f} ms for the bare step"
                              for name, p in fam.items()) + "."]
    if "dvc" in results:
        d = results["dvc"]
        tm = d.get("train_metrics", {})
        lines += ["", f"`dvc repro` ran in a temporary copy of the repository with `data.archive` set to the "
                  f"generated archive and a single variant `simplecnn` trained for {d['epochs']} epoch(s), each "
                  f"visiting {d['fraction']:.0%} of the training rows (random rows over the whole memory-mapped "
                  "set; the held-out evaluation is whole); "
                  "`data/raw` is `cache: false`, `data/prepared` and the model go to the DVC cache."
                  + (f" Training reported {tm.get('images_per_s', 0):,.0f} img/s." if tm.get("images_per_s") else "")]
    lines += ["", "How each figure is taken: `unzip` and `index` run the stage code (`extract_archive`, `build_index`) "
              "in a subprocess, wall time from start to exit, peak memory summed over its process tree (sampled); "
              "training runs the real `train_one_epoch` on the memory-mapped array, cut to a few batches of random "
              "rows, alternating with the bare step on one in-memory batch; prediction runs `predict_logits` on "
              "the memory-mapped val array, alternating with the bare forward. Peak memory while training is "
              "taken after one pass of reads over every row of the array, as an epoch makes. The JSON file "
              "holds every figure, the per-round measurements and the loads.", ""]
    return "\n".join(lines)


NOTES_MARK = "<!-- Notes below this line are written by hand and kept when the table is regenerated. -->"


def keep_notes(markdown: str, previous: Path) -> str:
    """The new table, followed by the hand-written notes of the previous file (if any)."""
    try:
        old = previous.read_text(encoding="utf-8")
    except OSError:
        return markdown
    if NOTES_MARK not in old:
        return markdown
    return markdown.rstrip("\n") + "\n\n" + NOTES_MARK + old.split(NOTES_MARK, 1)[1]


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="python -m facecls.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=None, help="train images (default 100000; --quick: 300)")
    parser.add_argument("--val", type=int, default=None, help="val images (default 20000; --quick: 60)")
    parser.add_argument("--families", default="simplecnn,mobilenetv2", help="model families, comma-separated")
    parser.add_argument("--out", default="BENCHMARKS.md", help="Markdown table (default: %(default)s)")
    parser.add_argument("--json", default="bench/results.json", help="JSON results (default: %(default)s)")
    parser.add_argument("--cache-dir", default=str(REPO / "bench" / "cache"),
                        help="generated archives and scratch work (default: bench/cache)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=None,
                        help="training batches per measurement (default: 256 images on CPU, 50 batches on CUDA)")
    parser.add_argument("--pred-batches", type=int, default=None,
                        help="prediction batches of 512 per measurement (default 1 on CPU, 10 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: params.yaml)")
    parser.add_argument("--rounds", type=int, default=None, help="back-to-back rounds of pipeline vs bare (default 8 on CPU, 4 on CUDA)")
    parser.add_argument("--workers", type=int, default=0, help="processes for drawing and raw decode (0: all)")
    parser.add_argument("--dvc", action=argparse.BooleanOptionalAction, default=None,
                        help="time `dvc repro` (default: on, off with --quick)")
    parser.add_argument("--dvc-epochs", type=int, default=1, help="epochs of the dvc repro training (default 1)")
    parser.add_argument("--dvc-fraction", type=float, default=None,
                        help="share of the training rows each dvc repro epoch visits (default 0.1 on CPU, 1 on CUDA)")
    parser.add_argument("--keep", action="store_true", help="keep the extracted data and the dvc copy")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 300 + 60 images, 2 batches of 16, 1 round, no dvc repro")
    args = parser.parse_args(argv)
    quick = args.quick
    for name, full, small in (("train", 100_000, 300), ("val", 20_000, 60), ("rounds", None, 1), ("dvc", True, False),
                              ("batches", None, 2), ("pred_batches", None, 1), ("batch_size", None, 16)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    if args.train < 10 or args.val < 1:
        parser.error("--train must be at least 10 and --val at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_wrap":
        return _wrap(argv[1:])
    if argv and argv[0] == "_fraction":
        _fraction(argv[1:])
        return 0
    if argv and argv[0] == "_bare_unzip":
        bare_unzip(argv[1], argv[2])
        return 0
    if argv and argv[0] == "_probe":
        p = argparse.ArgumentParser()
        p.add_argument("prepared")
        p.add_argument("family")
        p.add_argument("out")
        for flag in ("--batches", "--pred-batches", "--batch-size"):
            p.add_argument(flag, type=int, default=None)
        p.add_argument("--rounds", type=int, default=None)
        p.add_argument("--device", default="auto")
        a = p.parse_args(argv[1:])
        result = probe(Path(a.prepared), a.family, batches=a.batches, pred_batches=a.pred_batches,
                       rounds=a.rounds, device_name=a.device, batch_size=a.batch_size)
        Path(a.out).write_text(json.dumps(result, indent=2))
        return 0

    args = parse_args(argv)
    from facecls.atomic import write_text

    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s, load {load_avg():.2f}] {message}", file=sys.stderr,
              flush=True)

    results = run_benchmark(args, log)
    command = "python -m facecls.bench " + " ".join(argv)
    results["command"] = command.strip()
    markdown = keep_notes(render_markdown(results, command.strip()), Path(args.out))
    for path, text in ((args.out, markdown), (args.json, json.dumps(results, indent=2) + "\n")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    print(markdown)
    log(f"wrote {args.out} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
