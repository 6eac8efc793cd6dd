"""Training and prediction of one model family: the pipeline's own steps beside the bare work,
in each precision (fp32, bf16 autocast).

Run in a process of its own (``python -m facecls.tools.bench _probe``), so each family's
peak memory is its own. Training is the loop's ``build`` and ``fit_epoch`` on the
memory-mapped array, cut to a few batches of random rows; the bare work, the same model's
forward + backward + optimizer step on one in-memory batch. Prediction is
``predict_logits``; the bare work, the forward pass. The ceiling of each phase is the faster
precision's bare work: the machine's best, whichever precision the pipeline picks."""

from __future__ import annotations

import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from facecls.data.prepared import LabelledSet, load_labelled, load_unlabelled
from facecls.data.split import TEST, TRAIN
from facecls.device import pick_device
from facecls.models.architectures import shape_options
from facecls.models.inference import predict_logits, scoring_batch
from facecls.models.precision import autocast, device_has_bf16
from facecls.models.pretrained import RANDOM_START
from facecls.tools.bench import REPO
from facecls.tools.bench.measure import TreeSampler, load_avg, status_kb
from facecls.training.config import variant_config
from facecls.training.distributed import SINGLE
from facecls.training.loop import Run, batch_inputs, build, fit_epoch

# The train knobs where params.yaml has none.
DEFAULT_TRAIN = {"epochs": 12, "half_res_epochs": 0, "batch_size": 128, "lr": 0.002, "lr_factor": 0.1,
                 "optimizer": "adamw", "weight_decay": 5e-4, "schedule": "onecycle", "label_smoothing": 0.0,
                 "patience": 5,
                 "augment": {"flip": True, "shift": 0.06, "scale": 0.08, "color": 0.1}, "ema": 0,
                 "early_stopping": 0, "fold_models": "all", "label_issues": "keep", "seed": 0,
                 "device": "auto", "precision": "auto", "threads": 0, "nproc": 1}


def train_config(family: str, batch_size: int | None) -> dict:
    """The variant config train_variant would get for ``family`` from scratch (full mode, random
    weights): params.yaml's train knobs (defaults where absent) with the family's arch laid over them,
    in the shape (width, stem, ...) of params.yaml's first variant of that arch."""
    train, variants = dict(DEFAULT_TRAIN), {}
    params_path = REPO / "params.yaml"
    if params_path.exists():
        params = yaml.safe_load(params_path.read_text()) or {}
        train.update(params.get("train") or {})
        variants = params.get("variants") or {}
    name = f"bench-{family}"
    shape = next((shape_options(v) for v in variants.values() if isinstance(v, dict) and v.get("arch") == family), {})
    own = {"arch": family, **shape, **({"batch_size": batch_size} if batch_size else {})}
    return {**variant_config({"train": train, "variants": {name: own}}, name, str(params_path)), "start": RANDOM_START}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(device: torch.device, work: Callable[[], object], n_images: int) -> tuple[float, float]:
    """Images per wall second and per CPU second (all threads of this process) of ``work()``.
    CPU time barely moves with other users' load; wall time moves a lot on shared cores."""
    _sync(device)
    started, cpu = time.perf_counter(), time.process_time()
    work()
    _sync(device)
    return n_images / (time.perf_counter() - started), n_images / max(time.process_time() - cpu, 1e-9)


class Sides:
    """Both sides of each comparison on one ``Run``: the pipeline's step and the bare work in it."""

    def __init__(self, run: Run, data: LabelledSet, val: np.ndarray, pred_batch_size: int) -> None:
        self.run, self.data, self.val = run, data, val
        self.device, self.bs = run.device, run.config["batch_size"]
        self.pred_batch_size, self.pred_offset = pred_batch_size, 0
        self.x = torch.rand(self.bs, 3, 64, 64, device=self.device).contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 2, (self.bs,), device=self.device).float()
        self.xp = torch.rand(pred_batch_size, 3, 64, 64,
                             device=self.device).contiguous(memory_format=torch.channels_last)

    def subset(self, n_batches: int) -> LabelledSet:
        """``n_batches`` of random rows spread over the whole memory-mapped set, as an epoch reads them."""
        rows = self.data.train_rows
        part = np.full(len(self.data.labels), TEST, dtype=np.uint8)
        part[self.run.rng.choice(rows, size=min(n_batches * self.bs, len(rows)), replace=False)] = TRAIN
        return LabelledSet(self.data.images, self.data.labels, part)

    def pipeline_train(self, n_batches: int, precision: str) -> tuple[float, float]:
        part = self.subset(n_batches)
        self.run.precision["train"] = precision  # as build resolves it from train.precision
        return _timed(self.device, lambda: fit_epoch(self.run, part, self.run.config["variant"]), n_batches * self.bs)

    def bare_train(self, n_batches: int, precision: str) -> tuple[float, float]:
        model, optimizer = self.run.model, self.run.optimizer

        def steps():
            model.train()
            for _ in range(n_batches):
                with autocast(self.device, precision):
                    logits = model(self.x).float()
                loss = F.binary_cross_entropy_with_logits(logits, self.y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        return _timed(self.device, steps, n_batches * self.bs)

    def input_seconds(self, n_batches: int) -> float:
        """Seconds per batch of the loop's own input work (``batch_inputs``: gather the rows,
        uint8 -> float, augment, normalise)."""
        rows = np.sort(self.run.rng.choice(self.data.train_rows, size=self.bs, replace=False))
        _sync(self.device)
        started = time.perf_counter()
        for _ in range(n_batches):
            batch_inputs(self.run, self.data, rows)
        _sync(self.device)
        return (time.perf_counter() - started) / n_batches

    def pipeline_predict(self, n_images: int, precision: str) -> tuple[float, float]:
        start = self.pred_offset if self.pred_offset + n_images <= len(self.val) else 0  # fresh rows each round
        self.pred_offset = start + n_images
        images = self.val[start:start + n_images]
        return _timed(self.device, lambda: predict_logits(self.run.model, images, self.device,
                                                          batch_size=self.pred_batch_size, precision=precision),
                      n_images)

    def bare_predict(self, n_images: int, precision: str) -> tuple[float, float]:
        model = self.run.model

        @torch.inference_mode()
        def forward():
            model.eval()
            full, rest = divmod(n_images, self.pred_batch_size)
            for size in [self.pred_batch_size] * full + ([rest] if rest else []):
                with autocast(self.device, precision):
                    model(self.xp[:size]).float().cpu()
        return _timed(self.device, forward, n_images)


def _pair(pipeline: Callable[[], tuple[float, float]], bare: Callable[[], tuple[float, float]],
          pipeline_first: bool) -> dict:
    """Both sides back to back: on shared cores the load drifts, and a pair sees nearly the same load."""
    if pipeline_first:
        pipe, ceiling = pipeline(), bare()
    else:
        ceiling, pipe = bare(), pipeline()
    return {"bare": ceiling[0], "pipeline": pipe[0], "bare_cpu": ceiling[1], "pipeline_cpu": pipe[1]}


@dataclass
class Phase:
    """Training or prediction: both sides as functions of (work, precision), and how much work a
    side does each round (batches or images), at most and at least."""

    pipeline: Callable[[int, str], tuple[float, float]]
    bare: Callable[[int, str], tuple[float, float]]
    work: int
    least: int


def _work_sizes(phase: Phase, precisions: list[str], cuda: bool) -> dict[str, int]:
    """The work per side of each precision: all of it within 2x of the fastest bare work, less for
    a slower one (bf16 emulated without bf16 instructions runs 5-10x slower: its row need only show it)."""
    speed = {}
    for p in precisions:
        # Warm-up of both sides (the same batch shapes): allocator, thread pools, oneDNN primitives, cuDNN.
        phase.pipeline(phase.least, p)
        speed[p] = phase.bare(phase.least, p)[0 if cuda else 1]
    fastest = max(speed.values())
    return {p: phase.work if 2 * speed[p] >= fastest else max(phase.least, round(phase.work * speed[p] / fastest))
            for p in precisions}


def _summary(rounds: list[dict], cuda: bool) -> dict:
    return {"rate": statistics.median(r["pipeline"] for r in rounds),
            "ceiling": statistics.median(r["bare"] for r in rounds),
            "ceiling_per_cpu_s": statistics.median(r["bare_cpu"] for r in rounds),
            "ratio": statistics.median(r["pipeline"] / r["bare"] for r in rounds),
            # the same from total times (each round does the same work on both sides)
            "ratio_of_totals": sum(1 / r["bare"] for r in rounds) / sum(1 / r["pipeline"] for r in rounds),
            # images per CPU second: what the pipeline adds, nearly free of other users' load
            # (not on CUDA, where the CPU mostly waits for the GPU)
            "cpu_ratio": None if cuda else statistics.median(r["pipeline_cpu"] / r["bare_cpu"] for r in rounds),
            "rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds]}


def _against_ceiling(rounds: dict[str, list[dict]], picked: str, cuda: bool, work: dict[str, int]) -> dict:
    """Each precision's pipeline against the ceiling: the fastest bare work of any precision (per CPU
    second; per second on CUDA), round by round. The top-level figures are the picked precision's."""
    own = {p: _summary(r, cuda) for p, r in rounds.items()}
    best = max(own, key=lambda p: own[p]["ceiling" if cuda else "ceiling_per_cpu_s"])
    versus = {p: _summary([{**r, "bare": c["bare"], "bare_cpu": c["bare_cpu"]} for r, c in zip(rs, rounds[best])],
                          cuda) for p, rs in rounds.items()}
    return {**versus[picked], "precision": picked, "ceiling_precision": best,
            "precisions": {p: {"rate": versus[p]["rate"], "ratio": versus[p]["ratio"],
                               "cpu_ratio": versus[p]["cpu_ratio"], "bare": own[p]["ceiling"],
                               "bare_per_cpu_s": own[p]["ceiling_per_cpu_s"], "own_ratio": own[p]["ratio"],
                               "own_cpu_ratio": own[p]["cpu_ratio"], "work": work[p], "rounds": own[p]["rounds"]}
                           for p in rounds}}


def _sustained(bare: Callable[[], object], images_per_call: int, seconds: float) -> dict:
    """The bare work alone, round after round, for ``seconds``: the rate a stage that runs for minutes
    can expect. On these shared cores a few short rounds catch faster moments than a long run gets."""
    bare()  # warm: the first steps after a start allocate
    started, cpu, images = time.perf_counter(), time.process_time(), 0
    while time.perf_counter() - started < seconds:
        bare()
        images += images_per_call
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": round(wall, 1), "images": images, "rate": images / wall, "per_cpu_s": images / cpu}


def _family_run(prepared: Path, family: str, device_name: str,
                batch_size: int | None) -> tuple[torch.device, dict, LabelledSet, Run]:
    """The family's config on the prepared set, built as train_variant builds it: threads
    (train.threads, 0: all cores) and all, so that both sides of every comparison run on it."""
    device = pick_device(device_name)
    config = train_config(family, batch_size)
    data = load_labelled(prepared)
    return device, config, data, build(config, data, SINGLE, device)


def _train_batches(batches: int | None, cuda: bool, bs: int, data: LabelledSet) -> int:
    """Batches per training measurement: about 256 images a side on CPU, 50 batches on CUDA."""
    return max(1, min(batches or (50 if cuda else max(2, 256 // bs)), len(data.train_rows) // bs))


def sustained_bare_train(prepared: Path, family: str, *, device_name: str, batch_size: int | None,
                         batches: int | None, seconds: float) -> dict:
    """``probe``'s sustained bare training step on its own, in the precision training picks: taken
    again after the timed ``dvc repro`` so that the training stage's ceiling brackets it in time."""
    device, config, data, run = _family_run(prepared, family, device_name, batch_size)
    bs = config["batch_size"]
    n = _train_batches(batches, device.type == "cuda", bs, data)
    sides = Sides(run, data, load_unlabelled(prepared).images, pred_batch_size=scoring_batch(device))
    return _sustained(lambda: sides.bare_train(n, run.precision["train"]), n * bs, seconds)


def _walk_epoch(data: LabelledSet, rng: np.random.Generator, bs: int) -> float:
    """Leave memory as a whole epoch does: every page of the memory map read once (random rows,
    batch by batch). Returns the seconds."""
    started = time.perf_counter()
    order = rng.permutation(data.train_rows)
    for b in range(0, len(order) - bs + 1, bs):
        data.images[np.sort(order[b:b + bs])]
    return time.perf_counter() - started


def probe(prepared: Path, family: str, *, batches: int | None, pred_batches: int | None, rounds: int | None,
          device_name: str, batch_size: int | None, sustain_s: float = 0) -> dict:
    """Pipeline vs bare rates for one model family, and this process's peak memory; with ``sustain_s``,
    also the bare training step alone for that long, in the precision training picks."""
    # Peak private (anonymous) memory, where a float copy of the set would show, and peak mapped
    # file pages (the memory-mapped array, the libraries).
    with TreeSampler(os.getpid()) as memory:
        device, config, data, run = _family_run(prepared, family, device_name, batch_size)
        cuda = device.type == "cuda"
        bs = config["batch_size"]
        pred_batch_size = scoring_batch(device)  # as the pipeline scores
        pred_batches = pred_batches or (10 if cuda else max(1, 512 // pred_batch_size))
        rounds = rounds or (4 if cuda else 8)
        val = load_unlabelled(prepared).images
        batches = _train_batches(batches, cuda, bs, data)
        picked = {"train": run.precision["train"], "predict": run.precision["score"]}  # train.precision resolved
        # bf16 wherever torch runs it, emulated on a CPU without bf16 instructions (its rows show the cost).
        precisions = ["fp32"] + (["bf16"] if device.type == "cpu" or device_has_bf16(device)
                                 or "bf16" in picked.values() else [])
        n_pred = min(len(val), pred_batches * pred_batch_size)
        sides = Sides(run, data, val, pred_batch_size)
        epoch_walk_s = _walk_epoch(data, run.rng, bs)
        phases = {"train": Phase(sides.pipeline_train, sides.bare_train, batches, 1),
                  "predict": Phase(sides.pipeline_predict, sides.bare_predict, n_pred, min(n_pred, 64))}
        work = {name: _work_sizes(phase, precisions, cuda) for name, phase in phases.items()}
        for name, phase in phases.items():  # warm-up where the measured size differs (a new batch shape)
            for p in precisions:
                if work[name][p] != phase.least:
                    phase.bare(work[name][p], p)
        # Short pairs, the order swapped every round; a precision given less work gets fewer rounds.
        measured = {name: {p: [] for p in precisions} for name in phases}
        for r in range(rounds):
            for name, phase in phases.items():
                for p in precisions:
                    if work[name][p] == phase.work or r < 2:
                        n = work[name][p]
                        measured[name][p].append({**_pair(lambda: phase.pipeline(n, p), lambda: phase.bare(n, p),
                                                          pipeline_first=r % 2 == 1), "load": load_avg()})
        input_s = sides.input_seconds(20 if cuda else 4)
        sustained = (_sustained(lambda: sides.bare_train(batches, picked["train"]), batches * bs, sustain_s)
                     if sustain_s else None)
    peaks = memory.peaks_mb("peak_")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"family": family, "device": str(device), "threads": torch.get_num_threads(), "batch_size": bs,
            "precision_setting": config["precision"],
            "batches": batches, "train": {**_against_ceiling(measured["train"], picked["train"], cuda, work["train"]),
                                          "sustained": sustained},
            "input_seconds_per_batch": round(input_s, 4), "epoch_walk_s": round(epoch_walk_s, 2),
            "predict": {**_against_ceiling(measured["predict"], picked["predict"], cuda, work["predict"]),
                        "images": n_pred, "batch_size": pred_batch_size},
            "set_shape": list(data.images.shape), "set_is_memmap": isinstance(data.images, np.memmap),
            "peak_anon_mb": peaks["peak_anon_mb"], "peak_file_mb": peaks["peak_file_mb"],
            # VmHWM: this process's own high-water mark (its memory since exec, unlike ru_maxrss)
            "peak_rss_mb": round(status_kb("self").get("VmHWM", usage.ru_maxrss) / 1024, 1)}
