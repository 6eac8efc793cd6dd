"""Data-parallel training under torchrun: launching, joining the process group, and
the few collectives the training loop needs.

With ``train.nproc`` > 1 the train stage starts as one ordinary process, which
runs torchrun's own launcher (``launch``); torchrun starts ``nproc`` copies of
the stage script, each of which joins the process group (``joined``) and trains
its share of every batch under DistributedDataParallel. Every helper here is a
no-op in the 1-process world, so the plain path pays nothing for them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist

from facecls.device import pick_device, usable_cores
from facecls.errors import FaceclsError

# Where the processes started by ``launch`` leave their error reports.
RANK_ERRORS_ENV = "FACECLS_RANK_ERRORS"


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Process 0 alone writes files, logs and prints."""
        return self.rank == 0

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This process's strided share of ``rows``: rows[rank], rows[rank + size], ..."""
        return rows if self.size == 1 else rows[self.rank::self.size]


SINGLE = World()


def under_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def threads_per_process(threads: int, nproc: int) -> int:
    """CPU threads for each of ``nproc`` processes sharing ``threads`` (0: all cores)."""
    return max((threads or usable_cores()) // nproc, 1)


def local_batch_size(batch_size: int, world_size: int) -> int:
    """Images per process per step: ``train.batch_size`` is the batch of one optimizer
    step over all processes, so a run keeps its step count and LR schedule at any nproc."""
    local = batch_size // world_size
    if world_size > 1 and local < 2:
        raise FaceclsError(f"train.batch_size: {batch_size} is too small for {world_size} processes "
                           f"(each needs at least 2 images per step for BatchNorm)")
    return local


def launch(nproc: int, script: str, args: list[str], threads: int) -> None:
    """Run ``python script args`` in ``nproc`` processes with torchrun and wait.

    This is ``python -m torch.distributed.run --standalone --nproc_per_node N
    script args``, called in this process so that a failure can be told once:
    raises FaceclsError with the first error a process reported.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # torchrun's agent logs each failure with a report box of its own; ours is one line.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    command = ["--standalone", f"--nproc_per_node={nproc}", script, *args]
    with tempfile.TemporaryDirectory(prefix="facecls-ranks-") as error_dir:
        # torchrun passes its environment on to the processes it starts.
        os.environ[RANK_ERRORS_ENV] = error_dir
        os.environ["OMP_NUM_THREADS"] = str(threads_per_process(threads, nproc))
        try:
            run(get_args_parser().parse_args(command))
        except ChildFailedError as exc:
            message, details = _first_report(Path(error_dir)) or (_unreported_failure(exc, nproc), "")
            print(details, end="", file=sys.stderr)  # the cause's traceback, if it was a crash
            raise FaceclsError(message) from None
        except SignalException as exc:
            if exc.sigval.name == "SIGINT":
                raise KeyboardInterrupt from None
            raise FaceclsError(f"training stopped by {exc.sigval.name}") from None


def _first_report(error_dir: Path) -> tuple[str, str] | None:
    """(one-line message, traceback or "") of the earliest error report, if any.

    Earliest, because a process that fails makes its peers fail in turn (their
    collectives lose a partner): the first report is the cause.
    """
    reports = sorted(error_dir.glob("*.txt"))
    if not reports:
        return None
    message, _, details = reports[0].read_text(encoding="utf-8").partition("\n")
    return message, details


def _unreported_failure(exc, nproc: int) -> str:
    """A process that ended without a report: killed by a signal (out of memory, say) or failed to start."""
    rank, failure = exc.get_first_failure()
    reason = f"exit code {failure.exitcode}" if failure.exitcode >= 0 else failure.signal_name()
    return f"training process {rank} of {nproc} ended with {reason} and no error message"


@contextlib.contextmanager
def errors_to_launcher() -> Iterator[None]:
    """In a process started by ``launch``: hand an error to the launcher, which reports
    only the first, instead of printing it here (each process would print its own)."""
    error_dir = os.environ.get(RANK_ERRORS_ENV)
    if error_dir is None or not under_torchrun():
        yield
        return
    rank = int(os.environ["RANK"])
    try:
        yield
    except FaceclsError as exc:
        _write_report(Path(error_dir), rank, str(exc))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # Ctrl-C reached the launcher too; it says so once
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        _write_report(Path(error_dir), rank, f"training process {rank}: {type(exc).__name__}: {first_line}",
                      traceback.format_exc())
        raise SystemExit(1) from None


def _write_report(error_dir: Path, rank: int, message: str, details: str = "") -> None:
    # The name starts with the time, so sorting the names orders the reports.
    name = f"{time.time_ns():020d}-rank{rank}"
    tmp = error_dir / f"{name}.tmp"
    tmp.write_text(f"{' '.join(message.split())}\n{details}", encoding="utf-8")
    tmp.replace(error_dir / f"{name}.txt")


@contextlib.contextmanager
def joined(device_name: str) -> Iterator[tuple[World, torch.device]]:
    """This process's World and device: under torchrun with several processes, after
    joining their process group (gloo on CPU, nccl on CUDA with one GPU per process)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1")) if under_torchrun() else 1
    device = pick_device(device_name)
    if world_size == 1:
        yield SINGLE, device
        return
    world = World(int(os.environ["RANK"]), world_size, int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise FaceclsError(f"train.nproc: {world_size} processes on this machine but only "
                               f"{torch.cuda.device_count()} CUDA devices")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    elif device.type == "cpu":
        dist.init_process_group("gloo")
    else:
        raise FaceclsError(f"train.device: {device.type} cannot train in several processes (train.nproc > 1); "
                           f"use cpu or cuda")
    yield world, device
    # Not in a finally: a failing process must report its error before its peers
    # see the group close and fail in turn.
    dist.destroy_process_group()


def data_parallel(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The model to train: DDP-wrapped when there are several processes, else itself."""
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def broadcast_buffers(model: torch.nn.Module, world: World) -> None:
    """Give every process process 0's BatchNorm statistics, so all evaluate the model that is saved."""
    if world.size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def sum_over_processes(values: list[float], world: World, device: torch.device) -> list[float]:
    if world.size == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def gather_shards(share: np.ndarray, total: int, world: World, device: torch.device) -> np.ndarray:
    """Reassemble, on every process, the values each computed for its ``World.shard`` of
    ``total`` rows, in the rows' original order."""
    if world.size == 1:
        return share
    longest = -(-total // world.size)
    padded = torch.zeros(longest, dtype=torch.from_numpy(share).dtype, device=device)
    padded[:len(share)] = torch.from_numpy(share).to(device)
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    dist.all_gather(parts, padded)
    whole = np.empty(total, dtype=share.dtype)
    for rank, part in enumerate(parts):
        whole[rank::world.size] = part[:len(range(rank, total, world.size))].cpu().numpy()
    return whole


def gather_objects(value: Any, world: World) -> list:
    """Every process's ``value``, in rank order (for small things such as RNG states)."""
    if world.size == 1:
        return [value]
    values: list = [None] * world.size
    dist.all_gather_object(values, value)
    return values
