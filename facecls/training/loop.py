"""Train one model (one fold model of a variant: facecls.training.cross_validation): epochs over
memory-mapped uint8 images, the schedule run to its end or, with a tune part set aside from its
own training faces, early stopping on its HTER; a checkpoint each epoch so a killed run resumes
where it stopped. With ``train.ema`` the averaged weights (facecls.training.averaging) are what
early stopping reads and what is saved.

The steps are plain functions over a ``Run`` (as in torchvision's classification
reference): ``build`` the model, optimizer and random streams, ``resume`` from a
checkpoint, ``fit_epoch``, score the tune part (``tune_metrics``), ``keep_best``;
``train_variant`` strings them together. The benchmark times the same steps.

Under torchrun (``train.nproc`` > 1) the same loop runs in every process on its
share of each batch, DistributedDataParallel averaging the gradients; the
plumbing lives in facecls.training.distributed and is a no-op in a 1-process run.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from dvclive import Live
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from facecls.data.prepared import LabelledSet
from facecls.device import pick_device, set_cpu_threads
from facecls.evaluation.rates import hter, labels_at
from facecls.evaluation.thresholds import hter_optimal_threshold
from facecls.models.architectures import FaceModel, parameter_groups, shape_options
from facecls.models.files import save_model
from facecls.models.inference import batch_to_input, predict_logits, sigmoid
from facecls.models.precision import PHASES, autocast, resolve_precision
from facecls.models.pretrained import build_model
from facecls.training.augment import augment
from facecls.training.averaging import averaged_copy
from facecls.training.distributed import (
    SINGLE,
    World,
    broadcast_buffers,
    data_parallel,
    gather_objects,
    gather_shards,
    local_batch_size,
    sum_over_processes,
    threads_per_process,
)
from facecls.training.optim import make_optimizer, set_learning_rates
from facecls.training.resume import load_checkpoint, run_fingerprint, save_checkpoint


@dataclass
class Run:
    """One variant's training in progress: what the steps share."""

    config: dict
    world: World
    device: torch.device
    model: FaceModel  # the raw weights the optimizer moves
    trained: torch.nn.Module  # what the training steps run: DDP-wrapped when several processes
    averaged: AveragedModel | None  # train.ema: the averaged weights, or None
    optimizer: torch.optim.Optimizer
    precision: dict[str, str]  # resolved, per phase: {"train": "fp32" | "bf16", "score": ...}
    weights_used: str
    pos_weight: torch.Tensor | None
    device_images: tuple[torch.Tensor, torch.Tensor] | None  # the whole uint8 set and labels, on CUDA
    rng: np.random.Generator  # the order of the rows
    generator: torch.Generator  # the augmentation draws
    total_steps: int
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"hter": math.inf, "loss": math.inf, "epoch": 0, "state": None})

    @property
    def scored(self) -> FaceModel:
        """What early stopping reads and the model file holds: the averaged weights when train.ema is on."""
        return self.averaged.module if self.averaged is not None else self.model


def class_pos_weight(labels: np.ndarray) -> float:
    """pos_weight making class 0 (the minority) weigh as much in total as class 1."""
    n0, n1 = int((labels == 0).sum()), int((labels == 1).sum())
    return n0 / n1 if n0 and n1 else 1.0


def backbone_lr_factor(config: dict) -> float:
    """``lr_factor`` where the backbone starts from pretrained weights (a file the weights stage
    recorded), else 1: a slower backbone protects learned features, and a random one has none
    to protect (at 0.1 the convolutions of VGG64 and SimpleCNN learnt at a tenth of ``lr``)."""
    return config["lr_factor"] if config["start"].get("file") else 1.0


def steps_per_epoch(n_rows: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps per epoch: the same in every process, so none waits in a collective
    for a batch another lacks. The ragged last batch is dropped: BatchNorm dislikes tiny ones."""
    return max(n_rows // (local_batch_size(batch_size, world_size) * world_size), 1)


def build(config: dict, data: LabelledSet, world: World = SINGLE, device: torch.device = torch.device("cpu")) -> Run:
    """The model with its starting weights (``config["start"]``, the weights stage's record), the
    optimizer, the loss weight and the random streams."""
    if device.type == "cpu":
        set_cpu_threads(threads_per_process(config["threads"], world.size))
    torch.manual_seed(config["seed"])  # the same initial weights in every process
    model, weights_used = build_model(config["arch"], mode=config["mode"], start=config["start"],
                                      **shape_options(config))
    model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config["optimizer"],
                               parameter_groups(model, config["lr"], backbone_lr_factor(config)),
                               config["weight_decay"])
    trained = data_parallel(model, world, device)
    averaged = averaged_copy(model, config["ema"])
    if world.rank:  # dropout masks of its own; process 0 keeps a 1-process run's stream
        torch.manual_seed(config["seed"] + world.rank)
    pos_weight = None
    if config["weighted"]:
        value = config["pos_weight"] or class_pos_weight(data.labels[data.train_rows])
        pos_weight = torch.tensor(value, device=device)
    device_images = None
    if device.type == "cuda":  # the whole uint8 set fits on the GPU: no host copies per batch
        device_images = (torch.from_numpy(np.ascontiguousarray(data.images)).to(device),
                         torch.from_numpy(data.labels).to(device))
    precision = {phase: resolve_precision(config["precision"], [config["arch"]], phase, device) for phase in PHASES}
    return Run(config=config, world=world, device=device, model=model, trained=trained, averaged=averaged,
               optimizer=optimizer,
               precision=precision, weights_used=weights_used, pos_weight=pos_weight, device_images=device_images,
               rng=np.random.default_rng(config["seed"]),
               # Augmentation draws of its own in each process; process 0's are a 1-process run's.
               generator=torch.Generator(device=device).manual_seed(config["seed"] + 1 + world.rank),
               total_steps=steps_per_epoch(len(data.train_rows), config["batch_size"], world.size) * config["epochs"])


def resume(run: Run, path: Path, fingerprint: str) -> bool:
    """Continue from the checkpoint of this very run, if one exists."""
    state = load_checkpoint(path, fingerprint, run.world.size, quiet=not run.world.is_main)
    if state is None:
        return False
    run.model.load_state_dict(state["model"])
    if run.averaged is not None:
        run.averaged.load_state_dict(state["averaged"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.history, run.best, run.step = state["history"], state["best"], state["step"]
    run.rng.bit_generator.state = json.loads(state["numpy_rng"])
    torch.set_rng_state(state["torch_rng"][run.world.rank])
    run.generator.set_state(state["generator"][run.world.rank])
    return True


def batch_inputs(run: Run, data: LabelledSet, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Model input (augmented, normalised, on the device) and labels for ``rows``."""
    if run.device_images is not None:
        index = torch.from_numpy(rows).to(run.device)
        images, labels = run.device_images[0][index], run.device_images[1][index]
    else:
        images = data.images[rows]
        labels = torch.from_numpy(data.labels[rows]).to(run.device)
    x = batch_to_input(images, run.device,
                       augment=lambda batch: augment(batch, run.generator, **run.config["augment"]))
    return x, labels


def fit_epoch(run: Run, data: LabelledSet, desc: str) -> tuple[float, float]:
    """One pass over the training part; returns (mean loss, images per second), all processes together."""
    config, world = run.config, run.world
    run.trained.train()
    # Every process draws the same permutation (same seed) and takes its strided share.
    rows = world.shard(run.rng.permutation(data.train_rows))
    batch_size = local_batch_size(config["batch_size"], world.size)
    n_batches = steps_per_epoch(len(data.train_rows), config["batch_size"], world.size)
    smoothing = config["label_smoothing"]
    # The first half_res_epochs see the faces at 32x32: a quarter of the convolutions' work, while the
    # weights are far from where they end (as fast small-image recipes train their early epochs).
    half_resolution = len(run.history) < config["half_res_epochs"]
    total_loss, seen, started = 0.0, 0, time.perf_counter()
    # A bar in a terminal; in a log file (CI, `dvc repro > log`, a queued experiment) only the line
    # per epoch that _fit prints, not hundreds of carriage-return updates.
    bar = tqdm(range(n_batches), desc=desc, unit="batch", leave=False, mininterval=1.0, file=sys.stderr,
               disable=None if world.is_main else True)
    for b in bar:
        batch_rows = np.sort(rows[b * batch_size:(b + 1) * batch_size])
        x, labels = batch_inputs(run, data, batch_rows)
        if half_resolution:
            x = F.avg_pool2d(x, 2)
        target = labels.float() * (1 - smoothing) + 0.5 * smoothing
        set_learning_rates(run.optimizer, config["schedule"], run.step, run.total_steps)
        with autocast(run.device, run.precision["train"]):
            logits = run.trained(x).float()
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=run.pos_weight)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        if run.averaged is not None:
            run.averaged.update_parameters(run.model)
        run.step += 1
        total_loss += loss.detach().item() * len(batch_rows)
        seen += len(batch_rows)
        rate = seen * world.size / (time.perf_counter() - started)  # the processes keep step with each other
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{rate:.0f}", refresh=False)
    bar.close()
    total_loss, seen = sum_over_processes([total_loss, seen], world, run.device)
    return total_loss / max(seen, 1), seen / (time.perf_counter() - started)


def tune_metrics(run: Run, data: LabelledSet) -> dict:
    """Tune loss and HTER. Each process scores its share of the tune rows and the
    logits are gathered: HTER needs every score, not an average of per-share HTERs."""
    broadcast_buffers(run.scored, run.world)  # every process evaluates the model process 0 saves
    rows = data.tune_rows
    share = predict_logits(run.scored, data.images[run.world.shard(rows)], run.device,
                           precision=run.precision["score"])
    logits = gather_shards(share, len(rows), run.world, run.device)
    labels = data.labels[rows]
    loss = F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels).float())
    scores = sigmoid(logits)
    _, best_hter = hter_optimal_threshold(labels, scores)
    return {"tune_loss": float(loss), "tune_hter": float(best_hter),
            "tune_hter_at_0_5": float(hter(labels, labels_at(scores, 0.5)))}


def keep_best(run: Run, row: dict) -> bool:
    """Remember this epoch's weights if its tune HTER (then loss) is the best so far. Without a
    tune part (train.early_stopping 0: the schedule runs to its end) the last epoch is kept.
    Every process reaches the same decision from the same gathered metrics."""
    score = (row["tune_hter"], row["tune_loss"]) if "tune_hter" in row else (None, None)
    if score[0] is not None and score >= (run.best["hter"], run.best["loss"]):
        return False
    state = {k: v.cpu() for k, v in run.scored.state_dict().items()} if run.world.is_main else None
    run.best = {"hter": score[0], "loss": score[1], "epoch": row["epoch"], "state": copy.deepcopy(state)}
    return True


def checkpoint(run: Run, path: Path, fingerprint: str) -> None:
    """Save what ``resume`` needs; every process takes part (their random states are gathered)."""
    rng_states = gather_objects((torch.get_rng_state(), run.generator.get_state()), run.world)
    if run.world.is_main:
        save_checkpoint(path, {
            "fingerprint": fingerprint, "epoch": len(run.history), "step": run.step,
            "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "history": run.history,
            **({"averaged": run.averaged.state_dict()} if run.averaged is not None else {}),
            "best": run.best, "numpy_rng": json.dumps(run.rng.bit_generator.state),
            "torch_rng": [s[0] for s in rng_states], "generator": [s[1] for s in rng_states]})


def train_variant(config: dict, data: LabelledSet, model_path: Path, log_dir: Path | None,
                  resume_path: Path, extra_summary: dict | None = None, world: World = SINGLE,
                  device: torch.device | None = None) -> dict:
    """Train ``config`` (a variant_config) and write the best epoch's model to ``model_path``;
    per-epoch figures go to ``log_dir`` through DVCLive (none when None). ``extra_summary`` joins
    the summary saved with the model.

    Under torchrun with several processes (``world``, joined by the caller: facecls.training.
    distributed.joined), each trains on its share of every batch; process 0 alone writes the
    model, the DVCLive logs and the resume checkpoint, and prints.
    """
    device = device or pick_device(config["device"])
    run = build(config, data, world, device)
    fingerprint = run_fingerprint(config, data)
    if resume(run, resume_path, fingerprint) and world.is_main:
        print(f"resuming {run_name(config)} after epoch {len(run.history)} from {resume_path}", file=sys.stderr)
    live = None
    if world.is_main and log_dir is not None:
        live = _live(log_dir)
        for row in run.history:  # replay the epochs done before a resume, so the curves are whole
            _log_epoch(live, row)
    stopped_early = _fit(run, data, live, resume_path, fingerprint)
    return _finish(run, live, model_path, resume_path, stopped_early, extra_summary or {})


def _fit(run: Run, data: LabelledSet, live: Live | None, resume_path: Path, fingerprint: str) -> bool:
    """The epochs left to run; returns whether early stopping ended them."""
    config = run.config
    for epoch in range(len(run.history) + 1, config["epochs"] + 1):
        if epoch - run.best["epoch"] > config["patience"] and run.best["epoch"] > 0:
            return True
        started, cpu_started = time.perf_counter(), time.process_time()
        train_loss, images_per_s = fit_epoch(run, data, desc=f"{run_name(config)} epoch {epoch}")
        epoch_seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": train_loss, **(tune_metrics(run, data) if data.tune_rows.size else {}),
               "images_per_s": images_per_s, "epoch_seconds": epoch_seconds,
               # This process's CPU time, all its threads: what the grid weighs recipes by (HTER per
               # CPU-second), steadier than wall time on shared cores.
               "epoch_cpu_seconds": time.process_time() - cpu_started}
        run.history.append(row)
        improved = keep_best(run, row)
        checkpoint(run, resume_path, fingerprint)
        if live is not None:
            _log_epoch(live, row)
        if run.world.is_main:
            tune = (f", tune loss {row['tune_loss']:.4f}, tune HTER {row['tune_hter']:.4f}"
                    f"{' (best)' if improved else ''}") if "tune_hter" in row else ""
            print(f"{run_name(config)} epoch {epoch}/{config['epochs']}: train loss {train_loss:.4f}{tune}, "
                  f"{images_per_s:.0f} img/s", file=sys.stderr)
    return False


def _finish(run: Run, live: Live | None, model_path: Path, resume_path: Path, stopped_early: bool,
            extra_summary: dict) -> dict:
    """Write the best epoch's model (process 0) and return the run's summary."""
    history = run.history
    summary = {"best_epoch": run.best["epoch"], "best_tune_hter": run.best["hter"], "epochs_run": len(history),
               "stopped_early": stopped_early,
               "train_seconds": round(sum(r["epoch_seconds"] for r in history), 2),
               "train_cpu_seconds": round(sum(r.get("epoch_cpu_seconds", 0.0) for r in history), 2),
               "images_per_s": round(float(np.mean([r["images_per_s"] for r in history])), 1),
               "pos_weight": float(run.pos_weight) if run.pos_weight is not None else None,
               "weights_used": run.weights_used, "device": str(run.device), "processes": run.world.size,
               "precision": run.precision, **extra_summary}
    for key in ("train_seconds", "train_cpu_seconds"):
        summary[key] = round(summary[key] + (extra_summary.get("round1") or {}).get(key, 0.0), 2)
    if not run.world.is_main:
        return summary
    run.model.load_state_dict(run.best["state"])
    if live is not None:
        _end_live(live, summary)
    save_model(model_path, run.model.cpu(), {**run.config, "weights_used": run.weights_used},
               history=history, summary=summary)
    resume_path.unlink(missing_ok=True)
    return summary


def run_name(config: dict) -> str:
    """How progress lines name a run: the variant, and its fold when it is one of several."""
    return config["variant"] + (f" fold {config['fold'] + 1}/{config['folds']}" if "fold" in config else "")


def _live(log_dir: Path) -> Live:
    return Live(str(log_dir), save_dvc_exp=False, dvcyaml=None, report=None)


def _end_live(live: Live, summary: dict) -> None:
    # weights_used too: the stage's own log must say when ImageNet weights were not really used.
    for key in ("best_epoch", "best_tune_hter", "train_seconds", "images_per_s", "weights_used"):
        live.summary[key] = summary[key]
    live.end()


def log_history(log_dir: Path, history: list[dict], summary: dict) -> None:
    """Write the per-epoch logs of a run finished before (a fold model kept after a kill)."""
    live = _live(log_dir)
    for row in history:
        _log_epoch(live, row)
    _end_live(live, summary)


def _log_epoch(live: Live, row: dict) -> None:
    for key, value in row.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()
