"""Stage train@<variant>: train one variant on data/prepared/, write models/<variant>.pt.

Per-epoch metrics go to results/train/<variant>/ through DVCLive; a killed run
resumes from .cache/resume/<variant>.pt when rerun. With train.nproc > 1 the
script starts itself again under torchrun, once per process (data-parallel).
"""

import sys
from pathlib import Path

from facecls.audit.settings import check_label_issues
from facecls.data.label_issues import apply_label_issues
from facecls.data.prepared import load_labelled
from facecls.errors import fail_cleanly
from facecls.models.pretrained import start_record
from facecls.params import load_params
from facecls.training.config import variant_config
from facecls.training.distributed import errors_to_launcher, is_main_process, launch, under_torchrun
from facecls.training.resume import resume_path


@fail_cleanly
def main() -> None:
    variant = sys.argv[1]
    params = load_params()
    config = {**variant_config(params, variant), "start": start_record(variant)}
    check_label_issues(params, config["label_issues"])
    if config["nproc"] > 1 and not under_torchrun():
        launch(config["nproc"], __file__, [variant], threads=config["threads"])
        return
    # Imported here: the launching process needs none of the model code (seconds of imports).
    from facecls.training.self_training import train_recipe

    with errors_to_launcher():
        data, touched = apply_label_issues(load_labelled("data/prepared"), config["label_issues"])
        summary = train_recipe(config, data, Path(f"models/{variant}.pt"), Path(f"results/train/{variant}"),
                               resume_path(variant), extra_summary={"label_issues": config["label_issues"],
                                                                    "label_issues_train_faces": touched})
    if is_main_process():
        print(f"train@{variant}: best epoch {summary['best_epoch']} of {summary['epochs_run']}, tune HTER "
              f"{summary['best_tune_hter']:.4f}, {summary['images_per_s']:.0f} img/s, "
              f"weights {summary['weights_used']}, precision {summary['precision']['train']} "
              f"(scoring {summary['precision']['score']}; train.precision {config['precision']})"
              + (f", {summary['processes']} processes" if summary["processes"] > 1 else "")
              + (f", label issues: {config['label_issues']} {touched} train faces" if touched else "")
              + (f", self-trained with {sum(summary['pseudo_labels'][k] for k in ('class_0', 'class_1'))} "
                 "pseudo-labels" if config["self_training"] else ""))


if __name__ == "__main__":
    main()
