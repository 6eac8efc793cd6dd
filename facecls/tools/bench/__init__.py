"""Benchmark the pipeline at full size against the ceilings of the machine at hand.

``python -m facecls.tools.bench`` (defaults: 100,000 train + 20,000 val images) does, in one run:

* draws (once, cached under ``bench/cache/``, keyed by size) an archive in the
  exercise layout: a few hundred demo faces, each image a cheap perturbation of
  one (flip, shift, gain, sensor noise), JPEG quality 95;
* times the ``check`` and ``index`` stages' code (each in a subprocess: wall time,
  CPU time, peak memory) beside their ceilings: zipfile reading the central
  directory and label file, and the raw decode rate of the same JPEG bytes
  already in memory with as many processes as ``index`` uses;
* per model family and per precision (fp32, bf16 autocast), times the training
  loop's own ``fit_epoch`` on the memory-mapped array (a bounded number of
  batches over random rows of the whole set) beside the bare model's forward +
  backward + optimizer step on an in-memory batch of the same size
  (channels_last, as training does), and ``predict_logits`` beside the bare
  forward pass; pairs run back to back and the ratio is the median of the
  per-round ratios; the ceiling is the faster precision's bare work, and the
  target holds for the precision ``train.precision`` picks;
* measures peak memory while training on the 100k array;
* times ``dvc repro`` of check -> index -> train@simplecnn (one full epoch) in a
  temporary copy of the repository, each stage's command and DVC's own time
  between them, beside what the ceilings above predict;
* writes the figures, each with its ceiling and ratio, to a Markdown table and
  a JSON file.

Ratios are ``measured rate / ceiling rate`` (or ``ceiling time / measured time``):
1.0 means the pipeline runs as fast as the bare work, lower is slower.
"""

from pathlib import Path

# The checkout whose params.yaml, dvc.yaml and stages are benchmarked.
REPO = Path(__file__).resolve().parents[3]
# What `python -m` runs: the benchmark starts its internal sub-commands in processes of their own.
MODULE = __name__
