"""``python -m facecls.tools.bench.speed``: what buys training speed, per architecture and shape: the
bare training step (forward, backward, AdamW step on one in-memory batch, channels_last) at each
batch size, eager and under ``torch.compile``, in fp32 and in bf16 autocast; and scoring (the
forward pass in eval mode, batch 128, as prediction runs it) in each precision. Writes a Markdown
table (``--out``) and prints it.

Each configuration runs in turn for ``--seconds`` after a warm-up, and the whole set is measured
``--rounds`` times, interleaved, so that a slow minute on shared cores hits every configuration
alike; the table gives each one's median rate and its ratio to the first row of its architecture.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from facecls.atomic import write_text
from facecls.device import reuse_freed_memory, set_cpu_threads
from facecls.models.architectures import build_architecture
from facecls.models.precision import autocast, device_has_bf16

SHAPES = {  # name: (arch, shape options)
    "simplecnn": ("simplecnn", {}),
    "vgg64": ("vgg64", {}),
    "vgg64 stem single": ("vgg64", {"stem": "single"}),
    "vgg64 stem single, width 24": ("vgg64", {"stem": "single", "width": 24}),
}


def step_rate(arch: str, shape: dict, batch: int, compiled: bool, precision: str, seconds: float) -> float:
    """Images per second of the bare training step, after a warm-up (and compilation)."""
    torch.manual_seed(0)
    model = build_architecture(arch, **shape).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    run = torch.compile(model) if compiled else model
    x = torch.rand(batch, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,)).float()
    device = torch.device("cpu")

    def step() -> None:
        with autocast(device, precision):
            logits = run(x).float()
        loss = F.binary_cross_entropy_with_logits(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        done += batch
    return done / (time.perf_counter() - started)


def score_rate(arch: str, shape: dict, precision: str, seconds: float, batch: int = 128) -> float:
    """Images per second of the bare forward pass in eval mode, as scoring runs it."""
    torch.manual_seed(0)
    model = build_architecture(arch, **shape).to(memory_format=torch.channels_last).eval()
    x = torch.rand(batch, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    device = torch.device("cpu")
    with torch.inference_mode():
        for _ in range(2):
            with autocast(device, precision):
                model(x)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            with autocast(device, precision):
                model(x).float()
            done += batch
    return done / (time.perf_counter() - started)


def measure(config: tuple, seconds: float) -> float:
    name, batch, compiled, precision = config
    arch, shape = SHAPES[name]
    if compiled == "score":
        return score_rate(arch, shape, precision, seconds, batch)
    return step_rate(arch, shape, batch, compiled, precision, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m facecls.tools.bench.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, of: " + ", ".join(SHAPES))
    parser.add_argument("--batches", default="32,64,128", help="batch sizes (default: %(default)s)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure torch.compile at batch 64 (default: on)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default 0: all cores)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/speed.md"))
    args = parser.parse_args()
    reuse_freed_memory()
    threads = set_cpu_threads(args.threads)
    precisions = ["fp32"] + (["bf16"] if device_has_bf16(torch.device("cpu")) else [])
    configs = []
    for name in args.shapes.split(","):
        for precision in precisions:
            configs += [(name, int(b), False, precision) for b in args.batches.split(",")]
            if args.compile:
                configs.append((name, 64, True, precision))
            configs.append((name, 128, "score", precision))
    rates: dict[tuple, list[float]] = {c: [] for c in configs}
    for round_ in range(args.rounds):
        for config in configs:
            rates[config].append(measure(config, args.seconds))
            print(f"round {round_ + 1}: {config}: {rates[config][-1]:.0f} img/s", flush=True)
    lines = [f"Bare training step, {threads} CPU thread(s), channels_last, median of {args.rounds} interleaved rounds "
             f"of {args.seconds:g} s (`python -m facecls.tools.bench.speed`):", "",
             "| architecture | work | batch | compiled | precision | img/s | vs. its first row |",
             "|---|---|---:|---|---|---:|---:|"]
    first: dict[tuple, float] = {}
    for (name, batch, compiled, precision), measured in rates.items():
        median = statistics.median(measured)
        work = "score" if compiled == "score" else "train"
        first.setdefault((name, work), median)
        lines.append(f"| {name} | {work} | {batch} | {'yes' if compiled is True else 'no'} | {precision} | "
                     f"{median:,.0f} | {median / first[name, work]:.2f} |")
    table = "\n".join(lines) + "\n"
    write_text(args.out, table)
    print(table)


if __name__ == "__main__":
    main()
