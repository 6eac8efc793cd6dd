"""The benchmark's archive: full size, in the exercise layout, drawn once and cached.

A few hundred demo faces are drawn; every image is a cheap perturbation of one of them
(shift, flip, gain, sensor noise), so 120,000 images take minutes, not hours."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from facecls.atomic import atomic_path
from facecls.tools.demo.archive import demo_image, zip_entry

GEN_VERSION = 1          # bump when the generated images change, to invalidate cached archives
ROOT = "bench_faces/"
JPEG_QUALITY = 95        # like the exercise photos
DISTINCT_FACES = 384     # demo drawings; every image is a perturbed copy of one of them
GEN_CHUNK = 2000

# The drawn faces, in each rendering worker (set by its initializer, not sent with every job).
_FACES: np.ndarray | None = None


def _draw(args: tuple[int, int, int]) -> list[tuple[np.ndarray, int]]:
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
    """The archive of this size from the cache, drawn first if it is not there."""
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
