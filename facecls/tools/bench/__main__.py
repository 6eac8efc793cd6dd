"""``python -m facecls.tools.bench``: the command line, and the internal sub-commands the
benchmark starts in processes of their own (``_wrap``, ``_dvc``, ``_fraction``, ``_bare_listing``,
``_probe``, ``_sustain``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from facecls.tools import bench
from facecls.tools.bench.measure import load_avg, record_dvc, record_stage

# Everything else (numpy and PIL for the ceilings, torch for run, probe and dvc_run) is imported
# where it is used: `_wrap` runs around every stage of the timed `dvc repro`, `_dvc` runs DVC
# itself and `_bare_listing` is the check stage's ceiling, so none may pay for imports it does not
# need in its figures.


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog=f"python -m {bench.MODULE}", description=bench.__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=None, help="train images (default 100000; --quick: 300)")
    parser.add_argument("--val", type=int, default=None, help="val images (default 20000; --quick: 60)")
    parser.add_argument("--families", default="simplecnn,vgg64,mobilenetv2", help="model families, comma-separated")
    parser.add_argument("--out", default="BENCHMARKS.md", help="Markdown table (default: %(default)s)")
    parser.add_argument("--json", default="bench/results.json", help="JSON results (default: %(default)s)")
    parser.add_argument("--cache-dir", default=str(bench.REPO / "bench" / "cache"),
                        help="generated archives and scratch work (default: bench/cache)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=None,
                        help="training batches per measurement (default: 256 images on CPU, 50 batches on CUDA)")
    parser.add_argument("--pred-batches", type=int, default=None,
                        help="prediction batches per measurement (default: 512 images on CPU, 10 batches on CUDA)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: params.yaml)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="back-to-back rounds of pipeline vs bare (default 8 on CPU, 4 on CUDA)")
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


def _probe_command(argv: list[str]) -> int:
    """``_probe PREPARED FAMILY OUT [options]``: one family's probe, its results to the JSON file OUT."""
    from facecls.tools.bench.probe import probe  # torch: see the note at the top

    p = argparse.ArgumentParser()
    p.add_argument("prepared")
    p.add_argument("family")
    p.add_argument("out")
    for flag in ("--batches", "--pred-batches", "--batch-size", "--rounds"):
        p.add_argument(flag, type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--sustain", type=float, default=0)
    a = p.parse_args(argv)
    result = probe(Path(a.prepared), a.family, batches=a.batches, pred_batches=a.pred_batches,
                   rounds=a.rounds, device_name=a.device, batch_size=a.batch_size, sustain_s=a.sustain)
    Path(a.out).write_text(json.dumps(result, indent=2))
    return 0


def _sustain_command(argv: list[str]) -> int:
    """``_sustain PREPARED FAMILY OUT SECONDS [options]``: the bare training step alone for SECONDS."""
    from facecls.tools.bench.probe import sustained_bare_train  # torch: see the note at the top

    p = argparse.ArgumentParser()
    p.add_argument("prepared")
    p.add_argument("family")
    p.add_argument("out")
    p.add_argument("seconds", type=float)
    for flag in ("--batches", "--batch-size"):
        p.add_argument(flag, type=int, default=None)
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    result = sustained_bare_train(Path(a.prepared), a.family, device_name=a.device, batch_size=a.batch_size,
                                  batches=a.batches, seconds=a.seconds)
    Path(a.out).write_text(json.dumps(result, indent=2))
    return 0


def _benchmark(argv: list[str]) -> int:
    from facecls.atomic import write_text
    from facecls.tools.bench.report import keep_notes, render_markdown
    from facecls.tools.bench.run import run_benchmark  # torch: see the note at the top

    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s, load {load_avg():.2f}] {message}", file=sys.stderr,
              flush=True)

    results = run_benchmark(args, log)
    command = f"python -m {bench.MODULE} {' '.join(argv)}".strip()
    results["command"] = command
    markdown = keep_notes(render_markdown(results, command), Path(args.out))
    for path, text in ((args.out, markdown), (args.json, json.dumps(results, indent=2) + "\n")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_text(path, text)
    print(markdown)
    log(f"wrote {args.out} and {args.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    if command == "_wrap":  # _wrap LOG -- cmd ...
        return record_stage(argv[1], argv[argv.index("--") + 1:])
    if command == "_dvc":  # _dvc OUT -- dvc arguments ...
        return record_dvc(argv[1], argv[argv.index("--") + 1:])
    if command == "_bare_listing":  # _bare_listing ARCHIVE
        from facecls.tools.bench.ceilings import bare_listing

        bare_listing(argv[1])
        return 0
    if command == "_fraction":  # _fraction F stages/train.py ARGS
        from facecls.tools.bench.dvc_run import run_fraction  # torch: see the note at the top

        run_fraction(float(argv[1]), argv[2], argv[3:])
        return 0
    if command == "_probe":
        return _probe_command(argv[1:])
    if command == "_sustain":
        return _sustain_command(argv[1:])
    return _benchmark(argv)


if __name__ == "__main__":
    code = main()
    if sys.argv[1:2] == ["_wrap"]:
        # The stage is recorded: this interpreter's teardown would only land between the stage's
        # recorded end and DVC's next step, where it would count as DVC's time.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
