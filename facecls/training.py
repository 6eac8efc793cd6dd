"""Train one variant: epochs over memory-mapped uint8 images, early stopping on
held-out HTER, a checkpoint each epoch so a killed run resumes where it stopped.

Under torchrun (``train.nproc`` > 1) the same loop runs in every process on its
share of each batch, DistributedDataParallel averaging the gradients; the
plumbing lives in facecls.distributed and is a no-op in a 1-process run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from facecls.atomic import atomic_path
from facecls.augment import augment
from facecls.checkpoint import save_model
from facecls.data import LabelledSet
from facecls.device import set_cpu_threads
from facecls.distributed import (SINGLE, World, broadcast_buffers, data_parallel, gather_objects, gather_shards,
                                 joined, local_batch_size, sum_over_processes, threads_per_process)
from facecls.inference import batch_to_input, predict_logits, sigmoid
from facecls.metrics import hter, hter_optimal_threshold
from facecls.models import build_model, parameter_groups

# 2: RNG states are lists, one per training process.
RESUME_FORMAT = "facecls-resume-2"


def class_pos_weight(labels: np.ndarray) -> float:
    """pos_weight making class 0 (the minority) weigh as much in total as class 1."""
    n0, n1 = int((labels == 0).sum()), int((labels == 1).sum())
    return n0 / n1 if n0 and n1 else 1.0


def lr_multiplier(schedule: str, step: int, total_steps: int) -> float:
    """Fraction of the base LR at ``step``: a pure function, so resuming needs no scheduler state."""
    progress = min(step / max(total_steps, 1), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    # one-cycle: a cosine warm-up over the first 30 % from 1/25, then a cosine decay to ~0.
    warm = 0.3
    if progress < warm:
        return 1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi * progress / warm))
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * (progress - warm) / (1 - warm)))


def make_optimizer(name: str, groups: list[dict], weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, weight_decay=weight_decay)
    return torch.optim.AdamW(groups, weight_decay=weight_decay)


def run_fingerprint(config: dict, data: LabelledSet) -> str:
    """Identifies a training run, so a checkpoint is resumed only by the very same run."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    h.update(data.labels.tobytes())
    h.update(data.holdout.tobytes())
    h.update(str(data.images.shape).encode())
    return h.hexdigest()[:16]


def steps_per_epoch(n_rows: int, batch_size: int, world_size: int) -> int:
    """Optimizer steps per epoch: the same in every process, so none waits in a collective
    for a batch another lacks. The ragged last batch is dropped: BatchNorm dislikes tiny ones."""
    return max(n_rows // (local_batch_size(batch_size, world_size) * world_size), 1)


def holdout_metrics(model, data: LabelledSet, device: torch.device, batch_size: int,
                    world: World = SINGLE) -> dict:
    """Held-out loss and HTER. Each process scores its share of the held-out rows and the
    logits are gathered: HTER needs every score, not an average of per-share HTERs."""
    rows = data.holdout_rows
    share = predict_logits(model, data.images[world.shard(rows)], device, batch_size=batch_size)
    logits = gather_shards(share, len(rows), world, device)
    labels = data.labels[rows]
    loss = F.binary_cross_entropy_with_logits(torch.from_numpy(logits), torch.from_numpy(labels).float())
    scores = sigmoid(logits)
    _, best_hter = hter_optimal_threshold(labels, scores)
    return {"holdout_loss": float(loss), "holdout_hter": float(best_hter),
            "holdout_hter_at_0_5": float(hter(labels, (scores >= 0.5).astype(np.uint8)))}


def train_one_epoch(model, optimizer, data: LabelledSet, device_images, device, config, *, rng,
                    generator, step: int, total_steps: int, pos_weight: torch.Tensor | None,
                    desc: str, world: World = SINGLE) -> tuple[float, int, float]:
    """One pass over the training part; returns (mean loss, next step, images per second),
    all processes together."""
    model.train()
    # Every process draws the same permutation (same seed) and takes its strided share.
    rows = world.shard(rng.permutation(data.train_rows))
    batch_size = local_batch_size(config["batch_size"], world.size)
    n_batches = steps_per_epoch(len(data.train_rows), config["batch_size"], world.size)
    smoothing = config["label_smoothing"]
    aug = config["augment"]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    total_loss, seen, started = 0.0, 0, time.perf_counter()
    bar = tqdm(range(n_batches), desc=desc, unit="batch", leave=False, mininterval=1.0, file=sys.stderr,
               disable=not world.is_main)
    for b in bar:
        batch_rows = np.sort(rows[b * batch_size:(b + 1) * batch_size])
        if device_images is not None:
            index = torch.from_numpy(batch_rows).to(device)
            images, labels = device_images[0][index], device_images[1][index]
        else:
            images = data.images[batch_rows]
            labels = torch.from_numpy(data.labels[batch_rows]).to(device)
        x = batch_to_input(images, device, augment=lambda x: augment(
            x, flip=aug["flip"], shift=aug["shift"], scale=aug["scale"], color=aug["color"],
            rotate=aug.get("rotate", 0.0), erase=aug.get("erase", 0.0), generator=generator))
        target = labels.float() * (1 - smoothing) + 0.5 * smoothing
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_multiplier(config["schedule"], step, total_steps)
        with autocast:
            logits = model(x).float()
        loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        total_loss += loss.detach().item() * len(batch_rows)
        seen += len(batch_rows)
        rate = seen * world.size / (time.perf_counter() - started)  # the processes keep step with each other
        bar.set_postfix(loss=f"{total_loss / seen:.4f}", img_s=f"{rate:.0f}", refresh=False)
    bar.close()
    total_loss, seen = sum_over_processes([total_loss, seen], world, device)
    return total_loss / max(seen, 1), step, seen / (time.perf_counter() - started)


def _save_resume(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_resume(path: Path, fingerprint: str, world: World) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a damaged checkpoint only costs the progress it held
        if world.is_main:
            print(f"warning: {path}: unreadable resume checkpoint, starting over", file=sys.stderr)
        return None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT or state.get("fingerprint") != fingerprint:
        return None
    if len(state["torch_rng"]) != world.size:  # saved by a run with another process count
        return None
    return state


def train_variant(config: dict, data: LabelledSet, model_path: Path, log_dir: Path, resume_path: Path) -> dict:
    """Train ``config`` (a variant_config) and write the best epoch's model to ``model_path``.

    Under torchrun with several processes, each trains on its share of every batch;
    process 0 alone writes the model, the DVCLive logs and the resume checkpoint, and prints.
    """
    with joined(config["device"]) as (world, device):
        return _train(config, data, model_path, log_dir, resume_path, world, device)


def _train(config: dict, data: LabelledSet, model_path: Path, log_dir: Path, resume_path: Path,
           world: World, device: torch.device) -> dict:
    from dvclive import Live

    if device.type == "cpu":
        set_cpu_threads(threads_per_process(config["threads"], world.size))
    torch.manual_seed(config["seed"])  # the same initial weights in every process
    arch_options = {"stem_stride": config["stem_stride"]} if config["arch"] == "resnet18" else {}
    model, weights_used = build_model(config["arch"], mode=config["mode"], weights=config["weights"],
                                      weights_fallback=config["weights_fallback"], **arch_options)
    model.to(device, memory_format=torch.channels_last)
    groups = parameter_groups(model, config["lr"], config["lr_factor"])
    for group in groups:
        group["base_lr"] = group["lr"]
    optimizer = make_optimizer(config["optimizer"], groups, config["weight_decay"])
    trained = data_parallel(model, world, device)  # what the training steps run: DDP-wrapped if several processes
    if world.rank:  # dropout masks of its own; process 0 keeps a 1-process run's stream
        torch.manual_seed(config["seed"] + world.rank)

    train_labels = data.labels[data.train_rows]
    pos_weight = None
    if config["weighted"]:
        value = config["pos_weight"] or class_pos_weight(train_labels)
        pos_weight = torch.tensor(value, device=device)
    device_images = None
    if device.type == "cuda":  # the whole uint8 set fits on the GPU: no host copies per batch
        device_images = (torch.from_numpy(np.ascontiguousarray(data.images)).to(device),
                         torch.from_numpy(data.labels).to(device))

    total_steps = steps_per_epoch(len(data.train_rows), config["batch_size"], world.size) * config["epochs"]
    rng = np.random.default_rng(config["seed"])
    # Augmentation draws of its own in each process; process 0's are a 1-process run's.
    generator = torch.Generator(device=device).manual_seed(config["seed"] + 1 + world.rank)
    fingerprint = run_fingerprint(config, data)

    history: list[dict] = []
    best = {"hter": math.inf, "loss": math.inf, "epoch": 0, "state": None}
    start_epoch, step = 1, 0
    resumed = _load_resume(resume_path, fingerprint, world)
    if resumed:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        history, best, step = resumed["history"], resumed["best"], resumed["step"]
        start_epoch = resumed["epoch"] + 1
        rng.bit_generator.state = json.loads(resumed["numpy_rng"])
        torch.set_rng_state(resumed["torch_rng"][world.rank])
        generator.set_state(resumed["generator"][world.rank])
        if world.is_main:
            print(f"resuming {config['variant']} after epoch {resumed['epoch']} from {resume_path}",
                  file=sys.stderr)

    live = None
    if world.is_main:
        live = Live(str(log_dir), save_dvc_exp=False, dvcyaml=None, report=None)
        for row in history:  # replay the epochs done before a resume, so the curves are whole
            _log_epoch(live, row)

    train_seconds = sum(r.get("epoch_seconds", 0.0) for r in history)
    stopped_early = False
    for epoch in range(start_epoch, config["epochs"] + 1):
        if epoch - best["epoch"] > config["patience"] and best["epoch"] > 0:
            stopped_early = True
            break
        started = time.perf_counter()
        train_loss, step, images_per_s = train_one_epoch(
            trained, optimizer, data, device_images, device, config, rng=rng, generator=generator, step=step,
            total_steps=total_steps, pos_weight=pos_weight, desc=f"{config['variant']} epoch {epoch}", world=world)
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        broadcast_buffers(model, world)
        row = {"epoch": epoch, "train_loss": train_loss, **holdout_metrics(model, data, device, 512, world),
               "images_per_s": images_per_s, "epoch_seconds": epoch_seconds}
        history.append(row)
        # Every process reaches the same decisions from the same gathered metrics.
        improved = (row["holdout_hter"], row["holdout_loss"]) < (best["hter"], best["loss"])
        if improved:
            best = {"hter": row["holdout_hter"], "loss": row["holdout_loss"], "epoch": epoch,
                    "state": copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
                    if world.is_main else None}
        rng_states = gather_objects((torch.get_rng_state(), generator.get_state()), world)
        if world.is_main:
            _log_epoch(live, row)
            print(f"{config['variant']} epoch {epoch}/{config['epochs']}: train loss {train_loss:.4f}, "
                  f"held-out loss {row['holdout_loss']:.4f}, held-out HTER {row['holdout_hter']:.4f}"
                  f"{' (best)' if improved else ''}, {images_per_s:.0f} img/s", file=sys.stderr)
            _save_resume(resume_path, {
                "format": RESUME_FORMAT, "fingerprint": fingerprint, "epoch": epoch, "step": step,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history, "best": best,
                "numpy_rng": json.dumps(rng.bit_generator.state), "torch_rng": [s[0] for s in rng_states],
                "generator": [s[1] for s in rng_states]})

    summary = {"best_epoch": best["epoch"], "best_holdout_hter": best["hter"], "epochs_run": len(history),
               "stopped_early": stopped_early, "train_seconds": round(train_seconds, 2),
               "images_per_s": round(float(np.mean([r["images_per_s"] for r in history])), 1),
               "pos_weight": float(pos_weight) if pos_weight is not None else None,
               "weights_used": weights_used, "device": str(device), "processes": world.size}
    if not world.is_main:
        return summary
    model.load_state_dict(best["state"])
    # weights_used too: the stage's own metrics must say when ImageNet weights were not really used.
    for key in ("best_epoch", "best_holdout_hter", "train_seconds", "images_per_s", "weights_used"):
        live.summary[key] = summary[key]
    live.end()
    save_model(model_path, model.cpu(), {**config, "weights_used": weights_used},
               history=history, summary=summary)
    resume_path.unlink(missing_ok=True)
    return summary


def _log_epoch(live, row: dict) -> None:
    for key, value in row.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()
