"""Stage train@<variant>: train one variant over the cross-validation folds of data/prepared/ and
write models/<variant>.pt: the mean of its fold models, with their out-of-fold scores.

Per-epoch metrics go to results/train/<variant>/fold_<k>/ through DVCLive; a killed run keeps
the fold models it finished and resumes inside the fold it was in. With train.nproc > 1 the
script starts itself again under torchrun, once per process (data-parallel, fold after fold).
"""

import sys
from pathlib import Path

from facecls.audit.settings import check_label_issues
from facecls.data.folds import cv_settings
from facecls.data.prepared import load_labelled
from facecls.errors import fail_cleanly
from facecls.models.inference import tta_setting
from facecls.models.pretrained import start_record
from facecls.params import load_params
from facecls.training.config import variant_config
from facecls.training.distributed import errors_to_launcher, is_main_process, launch, under_torchrun


@fail_cleanly
def main() -> None:
    variant = sys.argv[1]
    params = load_params()
    config = {**variant_config(params, variant), "start": start_record(variant)}
    folds, seed = cv_settings(params)
    tta = tta_setting(params)  # out-of-fold scores as the variant's mean will be scored
    check_label_issues(params, config["label_issues"])
    if config["nproc"] > 1 and not under_torchrun():
        launch(config["nproc"], __file__, [variant], threads=config["threads"])
        return
    # Imported here: the launching process needs none of the model code (seconds of imports).
    from facecls.training.cross_validation import train_cross_validated

    with errors_to_launcher():
        summary = train_cross_validated(config, load_labelled("data/prepared"), folds, seed,
                                        Path(f"models/{variant}.pt"), Path(f"results/train/{variant}"), tta)
    if is_main_process():
        print(f"train@{variant}: {summary['fold_models']} fold models of {folds}, epochs {summary['epochs_run']}, "
              f"{summary['train_seconds']:.0f} s, {summary['images_per_s']:.0f} img/s, "
              f"weights {summary['weights_used']}, precision {summary['precision']['train']} "
              f"(scoring {summary['precision']['score']}; train.precision {config['precision']})"
              + (f", {summary['processes']} processes" if summary["processes"] > 1 else "")
              + (f", label issues: {config['label_issues']}" if config["label_issues"] != "keep" else ""))


if __name__ == "__main__":
    main()
