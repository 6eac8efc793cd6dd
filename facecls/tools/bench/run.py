"""The benchmark run: each measurement beside its ceiling, in order, and the table rows comparing them."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from facecls.device import pick_device
from facecls.tools.bench.archive import cached_archive
from facecls.tools.bench.ceilings import all_files, md5_files, raw_decode_rate
from facecls.tools.bench.dvc_run import dvc_repro
from facecls.tools.bench.measure import Trash, bench_command, run_checked
from facecls.tools.bench.probe import train_config
from facecls.tools.bench.report import rate, row

# Targets from the issues: ratios to the ceiling, and the memory bounds. The check stage has
# none: it is a second or two at full size, its ratio is shown for what it is.
TARGET = {"index": 0.7, "train": 0.9, "predict": 0.9, "dvc": 0.7}
MEMORY_TARGET_GB = 3.0
DATA_MEMORY_TARGET_GB = 1.0
SUSTAIN_S = 60  # seconds of the bare training step alone, the ceiling of the minutes-long training stage
NOOP_TARGET_S = 1.5  # a `dvc repro` with nothing to do, paid by every status check and queued experiment


def machine_info(device: str) -> dict:
    """What the figures were measured on: cores, CPU, memory, versions, device, load."""
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
            "device": device, "load_at_start": [round(v, 2) for v in os.getloadavg()]}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def run_benchmark(args, log) -> dict:
    """Every measurement, in order (``args`` from the command line), with the table rows in ``rows``."""
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
    knobs = ("batch_size", "threads", "precision", "optimizer", "augment")
    results: dict = {"machine": machine_info(device), "sizes": {"train": args.train, "val": args.val},
                     "train_config": {k: config[k] for k in knobs},
                     "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "rows": []}
    rows = results["rows"]
    t0 = time.perf_counter()
    archive, meta = cached_archive(cache, args.train, args.val, workers, log)
    results["archive"] = {"path": str(archive), **meta}
    n_images = args.train + args.val
    manifest, prepared = work / "manifest.json", work / "prepared"
    results["check"] = _time_check(archive, manifest, logs, rows, log)
    results["index"] = _time_index(archive, manifest, prepared, logs, workers, n_images, rows, log)
    rows.append(_data_memory_row(results))
    results["hashing"] = _hashing_ceilings(archive, manifest, prepared, work, trash, log)
    results["families"] = {}
    for family in [f.strip() for f in args.families.split(",") if f.strip()]:
        results["families"][family] = _probe_family(family, prepared, work / f"probe-{family}.json", logs, args,
                                                    rows, log)
    if args.dvc:
        fraction = args.dvc_fraction or (1.0 if device.startswith("cuda") else 0.1)
        results["dvc"] = dvc_repro(archive, work, epochs=args.dvc_epochs, fraction=fraction,
                                   batch_size=args.batch_size, device=args.device, log=log, trash=trash)
        # The ceilings of DVC's work and of the training stage again, now: each is the mean of a
        # measurement before the timed run and one after it, as for check and index.
        repo = Path(results["dvc"]["repo"])
        results["hashing_after"] = _hashing_ceilings(archive, repo / "data" / "manifest.json",
                                                     repo / "data" / "prepared", work, trash, log)
        if "simplecnn" in results["families"]:
            results["families"]["simplecnn"]["train"]["sustained_after"] = _sustain_after(prepared, work, logs,
                                                                                         args, log)
        _dvc_rows(results, rows)
        if not args.keep:
            trash.put(Path(results["dvc"]["repo"]))
    if not args.keep:
        trash.put(prepared)
    trash.empty(wait=args.quick)
    results["machine"]["load_at_end"] = [round(v, 2) for v in os.getloadavg()]
    results["seconds"] = round(time.perf_counter() - t0, 1)
    return results


def _run_code(what: str, code: str, args: list[Path], log_path: Path) -> dict:
    """The stage's own code, measured in a fresh process as the stage script would run it."""
    return run_checked(what, [sys.executable, "-c", f"import sys; {code}", *map(str, args)], log_path)


def _time_check(archive: Path, manifest: Path, logs: Path, rows: list, log) -> dict:
    """check_archive + its manifest between two runs of the bare central-directory read."""
    def bare_listing() -> dict:
        return run_checked("bare listing", bench_command("_bare_listing", str(archive)), logs / "bare.log")

    log("check: bare central-directory read, check_archive, bare read again ...")
    bare_before = bare_listing()
    check = _run_code("check", "from facecls.data.manifest import check_archive, write_manifest; "
                      "write_manifest(sys.argv[2], check_archive(sys.argv[1]))", [archive, manifest],
                      logs / "check.log")
    bare_after = bare_listing()
    bare_s, bare_cpu = _mean([bare_before, bare_after], "wall_s"), _mean([bare_before, bare_after], "cpu_s")
    rows.append(row("check: check_archive (checks, manifest)",
                    f"{check['wall_s']:.1f} s, {check['cpu_s']:.1f} s CPU, peak {check['tree_peak_rss_mb']:.0f} MB, "
                    f"manifest {manifest.stat().st_size / 1e6:.2f} MB",
                    f"zipfile reading the central directory and label file, before and after: {bare_s:.1f} s "
                    f"({bare_cpu:.1f} s CPU)", bare_s / check["wall_s"], "—", None,
                    [bare_before["load"], check["load"], bare_after["load"]],
                    cpu_ratio=bare_cpu / max(check["cpu_s"], 1e-9)))
    return {"stage": check, "ceiling": [bare_before, bare_after], "ceiling_s": bare_s, "ceiling_cpu_s": bare_cpu}


def _time_index(archive: Path, manifest: Path, prepared: Path, logs: Path, workers: int, n_images: int,
                rows: list, log) -> dict:
    """build_index between two measurements of the raw decode rate."""
    log(f"index: raw decode ceiling ({workers} processes) ...")
    decode_before = raw_decode_rate(archive, workers)
    log("index: build_index ...")
    index = _run_code("index", "from facecls.data.index import build_index; "
                      "build_index(sys.argv[1], sys.argv[2], 0.1, 42)", [manifest, prepared], logs / "index.log")
    decode_after = raw_decode_rate(archive, workers)
    decode_rate = _mean([decode_before, decode_after], "rate")
    decode_cpu = _mean([decode_before, decode_after], "cpu_s")
    index_rate = n_images / index["wall_s"]
    rows.append(row("index: build_index (decode from the archive to uint8 .npy)",
                    f"{rate(index_rate)} ({index['wall_s']:.1f} s, {index['cpu_s']:.1f} s CPU, "
                    f"peak {index['tree_peak_rss_mb']:.0f} MB over {workers + 1} processes)",
                    f"raw decode of the bytes in memory, {workers} processes, before and after: "
                    f"{rate(decode_rate)} ({decode_cpu:.1f} s CPU)",
                    index_rate / decode_rate, f"≥ {TARGET['index']}", None,
                    [decode_before["load"], index["load"], decode_after["load"]],
                    cpu_ratio=decode_cpu / max(index["cpu_s"], 1e-9), threshold=TARGET["index"]))
    return {"stage": index, "ceiling": [decode_before, decode_after], "ceiling_rate": decode_rate,
            "ceiling_cpu_s": decode_cpu}


def _data_memory_row(results: dict) -> dict:
    peaks = {stage: results[stage]["stage"]["tree_peak_rss_mb"] / 1024 for stage in ("check", "index")}
    return row("peak memory of the data stages", ", ".join(f"{stage} {gb:.2f} GB" for stage, gb in peaks.items())
               + " RSS (summed over each stage's processes)", "—", None, f"≤ {DATA_MEMORY_TARGET_GB:g} GB",
               max(peaks.values()) <= DATA_MEMORY_TARGET_GB, results["index"]["stage"]["load"])


def _hashing_ceilings(archive: Path, manifest: Path, prepared: Path, work: Path, trash: Trash, log) -> dict:
    """The floor of DVC's own work: md5 of everything it hashes, and a copy of its outputs to its cache."""
    log("hashing ceilings (md5 of archive, manifest, prepared arrays; copy of manifest and arrays) ...")
    outputs = [manifest, *all_files(prepared)]
    hashing = {"output_bytes": sum(p.stat().st_size for p in outputs)}
    for name, files in (("archive", [archive]), ("outputs", outputs)):
        hashing[f"{name}_s"], hashing[f"{name}_cpu_s"] = md5_files(files)
    started, cpu = time.perf_counter(), time.process_time()
    copies = work / "copy-ceiling"
    copies.mkdir()
    for p in outputs:
        shutil.copyfile(p, copies / p.name)
    hashing["outputs_copy_s"] = time.perf_counter() - started
    hashing["outputs_copy_cpu_s"] = time.process_time() - cpu
    trash.put(copies)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in hashing.items()}


def _flags(*pairs: tuple[str, object]) -> list[str]:
    """``--flag value`` for each pair whose value is set (not None or 0)."""
    return [part for flag, value in pairs if value for part in (flag, str(value))]


def _mean(measurements: list[dict], key: str) -> float:
    """The mean of ``key`` over measurements of one ceiling taken before and after what it bounds."""
    return sum(m[key] for m in measurements) / len(measurements)


def _sustain_after(prepared: Path, work: Path, logs: Path, args, log) -> dict:
    """The bare SimpleCNN step alone for SUSTAIN_S seconds, in a process of its own, after the timed run."""
    log(f"bare simplecnn training step alone for {SUSTAIN_S} s, after dvc repro ...")
    out = work / "sustain-after.json"
    cmd = bench_command("_sustain", str(prepared), "simplecnn", str(out), str(SUSTAIN_S), "--device", args.device,
                        *_flags(("--batches", args.batches), ("--batch-size", args.batch_size)))
    run_checked("sustained bare step", cmd, logs / "sustain-after.log")  # this checkout's facecls
    return json.loads(out.read_text())


def _probe_family(family: str, prepared: Path, out: Path, logs: Path, args, rows: list, log) -> dict:
    """Training and prediction of one family, in a process of its own (its peak memory is its own)."""
    log(f"train/predict {family}: rounds of pipeline vs bare, back to back ...")
    # The timed `dvc repro` trains simplecnn for minutes: its ceiling needs the bare step's sustained rate.
    sustain = SUSTAIN_S if family == "simplecnn" and args.dvc else 0
    cmd = bench_command("_probe", str(prepared), family, str(out), "--device", args.device,
                        *_flags(("--batches", args.batches), ("--pred-batches", args.pred_batches),
                                ("--batch-size", args.batch_size), ("--rounds", args.rounds), ("--sustain", sustain)))
    process = run_checked(f"probe {family}", cmd, logs / f"probe-{family}.log")  # this checkout's facecls
    p = {**json.loads(out.read_text()), "process": process}
    rows += _precision_rows(family, "train", p, f"fit_epoch on the memory-mapped {p['set_shape'][0]:,} array",
                            "fwd+bwd+step, in-memory batch",
                            lambda n, work: f"batch {p['batch_size']}, {p['threads']} thread(s), {n} × {work} batches")
    rows += _precision_rows(family, "predict", p, "predict_logits", "forward",
                            lambda n, work: f"{n} × {work:,} images, batch {p['predict']['batch_size']}")
    peak = max(process["tree_peak_rss_mb"], p["peak_rss_mb"])
    rows.append(row(f"peak memory training {family} on the {p['set_shape'][0]:,}-image array",
                    f"{peak / 1024:.2f} GB RSS (private {p['peak_anon_mb'] / 1024:.2f} GB, "
                    f"mapped file pages {p['peak_file_mb'] / 1024:.2f} GB)",
                    "uint8 set memory-mapped: 1.23 GB per 100k", None, f"≤ {MEMORY_TARGET_GB:g} GB",
                    peak / 1024 <= MEMORY_TARGET_GB, process["load"]))
    return p


def _precision_rows(family: str, phase: str, p: dict, what: str, bare: str, detail) -> list[dict]:
    """One row per precision of ``phase``, the one train.precision picks first: each against the
    ceiling, the fastest bare work of any precision; the target holds for the picked one only."""
    f, knob = p[phase], p["precision_setting"]
    ceiling = (f"fastest bare {bare}, {f['ceiling_precision']}: {rate(f['ceiling'])} ("
               + ", ".join(f"{q} {rate(v['bare'])}" for q, v in f["precisions"].items()) + ")")
    rows = []
    for q in sorted(f["precisions"], key=lambda q: q != f["precision"]):
        v, picked = f["precisions"][q], q == f["precision"]
        mark = f" ({knob if knob == 'auto' else 'train.precision'})" if picked else ""
        own = v["own_cpu_ratio"] if v["own_cpu_ratio"] is not None else v["own_ratio"]
        measured = (f"{rate(v['rate'])} ({detail(len(v['rounds']), v['work'])}; {own:.2f} of its own bare work, "
                    f"{rate(v['bare'])})")
        rows.append(row(f"{phase} {family} {q}{mark}: {what}", measured, ceiling, v["ratio"],
                        f"≥ {TARGET[phase]}" if picked else "— (not picked)", None, [r["load"] for r in v["rounds"]],
                        cpu_ratio=v["cpu_ratio"], threshold=TARGET[phase] if picked else None))
    return rows


def _dvc_rows(results: dict, rows: list) -> None:
    """Each stage of the timed ``dvc repro`` beside what the ceilings measured above predict for it,
    then DVC's own time beside the hashing ceilings, the whole run, and the no-op rerun."""
    d, hashing, sizes = results["dvc"], results["hashing"], results["sizes"]
    fraction, epochs, n_train = d["fraction"], d["epochs"], sizes["train"]
    # One fold model of cv.folds: it trains on the other folds of the train part (90 % of the faces) and
    # scores its own fold once, with its mirror images.
    folds = d.get("folds", 5)
    n_oof = int(round(n_train * 0.9 / folds))
    n_fit = int(round(n_train * 0.9 * (folds - 1) / folds * fraction))
    simple = results["families"].get("simplecnn")
    expect = {"check": results["check"]["ceiling_s"],
              "index": (n_train + sizes["val"]) / results["index"]["ceiling_rate"]}
    expect_cpu = {"check": results["check"]["ceiling_cpu_s"], "index": results["index"]["ceiling_cpu_s"]}
    bare_train = ""
    if simple:
        bs = simple["batch_size"]
        # A stage that trains for minutes runs at the bare step's rate sustained that long (before and
        # after the timed run), not at the best of a few short rounds (on shared cores those catch
        # faster moments).
        sustained = [simple["train"]["sustained"], simple["train"]["sustained_after"]]
        train = {"rate": _mean(sustained, "rate"), "per_cpu_s": _mean(sustained, "per_cpu_s")}
        bare_train = (f"bare train rate sustained {sustained[0]['seconds']:.0f} s before and "
                      f"{sustained[1]['seconds']:.0f} s after the run, mean {rate(train['rate'])} "
                      f"({rate(train['per_cpu_s'])} per CPU second; short rounds: {rate(simple['train']['ceiling'])})")
        expect["train@simplecnn"] = (epochs * (n_fit // bs) * bs / train["rate"]
                                     + 2 * n_oof / simple["predict"]["ceiling"])
        if simple["train"]["cpu_ratio"] is not None:
            expect_cpu["train@simplecnn"] = (epochs * (n_fit // bs) * bs / train["per_cpu_s"]
                                             + 2 * n_oof / simple["predict"]["ceiling_per_cpu_s"])
    for name, stage in {s["stage"]: s for s in d["stages"]}.items():
        ceiling, ceiling_cpu = expect.get(name), expect_cpu.get(name)
        target = TARGET["train"] if name.startswith("train") else TARGET.get(name)
        what = {"check": "bare central-directory read", "index": "images / raw decode rate",
                "train@simplecnn": f"epochs / {bare_train} + its fold, mirrored, / bare forward"}.get(name, "")
        rows.append(row(f"dvc repro: stage {name}" + (f" (one fold model of {folds}: {epochs} epoch of "
                                                      f"{fraction:.0%} of its rows)" if name.startswith("train")
                                                      else ""),
                        f"{stage['wall_s']:.1f} s, {stage['cpu_s']:.1f} s CPU (peak "
                        f"{stage.get('peak_rss_mb', 0) / 1024:.2f} GB RSS, private "
                        f"{stage.get('peak_anon_mb', 0) / 1024:.2f} GB)",
                        f"{ceiling:.1f} s, {ceiling_cpu or 0:.1f} s CPU ({what})" if ceiling else "—",
                        ceiling / stage["wall_s"] if ceiling else None, f"≥ {target}" if target else "—", None,
                        d["first"]["load"],
                        cpu_ratio=ceiling_cpu / max(stage["cpu_s"], 1e-9) if ceiling_cpu else None,
                        threshold=target))
    parts = ("archive", "outputs", "outputs_copy")
    # Before the timed run and after it: copying the same 1.5 GB took from 0.5 s to 6.4 s on this
    # machine from one minute to the next, so one measurement is a poor ceiling.
    taken = [hashing, results["hashing_after"]]
    hash_ceiling = sum(_mean(taken, f"{k}_s") for k in parts)
    hash_ceiling_cpu = sum(_mean(taken, f"{k}_cpu_s") for k in parts)
    gaps = ", ".join(f"{s['dvc_before_s']:.1f} s before {s['stage']}" for s in d["stages"])
    dvc_cpu = d["dvc_cpu_s"]
    rows.append(row("dvc repro: DVC's own time (hashing, cache copy, lock)",
                    f"{d['dvc_overhead_s']:.1f} s, {dvc_cpu:.1f} s CPU ({gaps}, {d['dvc_after_s']:.1f} s after; "
                    f"the benchmark's stage wrapper, {d['wrapper_wall_s']:.1f} s, left out; CPU: DVC's process "
                    "less the processes it waited for)",
                    f"{hash_ceiling:.1f} s, {hash_ceiling_cpu:.1f} s CPU (md5 of the archive, the manifest and "
                    "the arrays; manifest and arrays copied to the cache; mean of before and after the run)",
                    hash_ceiling / d["dvc_overhead_s"] if d["dvc_overhead_s"] > 0 else None,
                    f"≥ {TARGET['dvc']}", None, d["first"]["load"],
                    cpu_ratio=hash_ceiling_cpu / max(dvc_cpu, 1e-9), threshold=TARGET["dvc"]))
    total_expect = sum(expect.values()) + hash_ceiling if simple else None
    rows.append(row("dvc repro: whole run, from nothing",
                    f"{d['first']['wall_s']:.1f} s", f"{total_expect:.1f} s (sum of the ceilings above)"
                    if total_expect else "—",
                    total_expect / d["first"]["wall_s"] if total_expect else None, "—", None, d["first"]["load"]))
    walls = d["noop"]["walls"]
    rows.append(row("dvc repro: again, nothing to do",
                    f"{d['noop']['wall_s']:.2f} s (median of {len(walls)}: {walls[0]:.2f}–{walls[-1]:.2f} s)", "—",
                    None, f"≤ {NOOP_TARGET_S:g} s", d["noop"]["wall_s"] <= NOOP_TARGET_S, d["noop"]["load"]))
