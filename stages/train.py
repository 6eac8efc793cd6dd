"""Stage train@<variant>: train one variant on data/prepared/, write models/<variant>.pt.

Per-epoch metrics go to results/train/<variant>/ through DVCLive; a killed run
resumes from models/resume/<variant>.pt when rerun.
"""

import sys
from pathlib import Path

from facecls.data import load_labelled
from facecls.errors import fail_cleanly
from facecls.params import load_params, variant_config
from facecls.training import train_variant


@fail_cleanly
def main() -> None:
    variant = sys.argv[1]
    config = variant_config(load_params(), variant)
    summary = train_variant(config, load_labelled("data/prepared"), Path(f"models/{variant}.pt"),
                            Path(f"results/train/{variant}"), Path(f"models/resume/{variant}.pt"))
    print(f"train@{variant}: best epoch {summary['best_epoch']} of {summary['epochs_run']}, held-out HTER "
          f"{summary['best_holdout_hter']:.4f}, {summary['images_per_s']:.0f} img/s, weights {summary['weights_used']}")


if __name__ == "__main__":
    main()
