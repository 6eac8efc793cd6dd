#!/usr/bin/env bash
# Benchmark the pipeline on a GPU machine in a few minutes and print the table.
#
#   scripts/gpu_check.sh                # 20,000 train + 4,000 val images, four model families, device auto
#   scripts/gpu_check.sh --quick        # a smoke run of seconds, e.g. on a CPU-only machine
#   scripts/gpu_check.sh --dvc          # also time `dvc repro` (check, index, one epoch)
#
# Any other arguments go to `python -m facecls.tools.bench` (later ones win).
# Results land in bench/cache/gpu/ (git-ignored), not in the committed BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # works without `pip install -e .` too
out="${BENCH_OUT:-bench/cache/gpu}"
mkdir -p "$out"

python - <<'PY'
import os, torch
if torch.cuda.is_available():
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}")
else:
    print(f"torch {torch.__version__}: no CUDA device, the benchmark runs on CPU ({os.cpu_count()} cores)")
PY

sizes=(--train 20000 --val 4000)
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then sizes=(); fi
done
start=$SECONDS
python -m facecls.tools.bench "${sizes[@]}" --families simplecnn,vgg64,mobilenetv2,resnet18 --no-dvc \
  --out "$out/BENCHMARKS.md" --json "$out/results.json" "$@" >/dev/null
cat "$out/BENCHMARKS.md"
echo "gpu_check: $((SECONDS - start)) s; JSON in $out/results.json"
