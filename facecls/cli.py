"""The `facecls` command: label any folder of face images with a trained model, outside DVC;
score label files against a truth file where one exists; fetch pretrained starting weights;
extract the archive's images as files."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from facecls.data.decode import FileSource, decode_to_array
from facecls.data.extract import extract_archive
from facecls.data.images import list_numbered_images
from facecls.data.manifest import format_counts
from facecls.device import pick_device
from facecls.atomic import write_json
from facecls.errors import FaceclsError, fail_cleanly
from facecls.grid import grid_table
from facecls.grid import rows_markdown as grid_markdown
from facecls.evaluation.truth import read_pair, rows_markdown, score_labels, variant_rows
from facecls.models.architectures import ARCHITECTURES
from facecls.models.files import load_model
from facecls.models.precision import PRECISIONS, scoring_precision
from facecls.models.pretrained import fetch_imagenet
from facecls.params import load_params
from facecls.predict import label_images, label_with_every_variant, write_label_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecls", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    label = commands.add_parser(
        "label", help="write one 0/1 line per image of FOLDER, in numeric order of the file names",
        description="Label every image of FOLDER (names are numbers: 1.jpg, 000002.jpg, ...) with a "
                    "trained model: 0 = accessory, 1 = none. Lines follow the numeric order of the names.")
    label.add_argument("folder", type=Path)
    label.add_argument("--model", type=Path, default=Path("results/model.pt"),
                       help="model file (default: results/model.pt, written by the predict stage)")
    label.add_argument("--out", type=Path, help="label file to write (default: FOLDER/../label_<FOLDER>.txt)")
    label.add_argument("--threshold", type=float,
                       help="decision threshold (default: the one stored in the model file)")
    label.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                       help="average each face with its mirror image (default: as stored in the model file)")
    label.add_argument("--device", default="auto")
    label.add_argument("--precision", choices=PRECISIONS,
                       help="auto, fp32 or bf16 (default: as stored in the model file; fp32 in a file that has none)")
    score = commands.add_parser(
        "score", help="HTER of a label file against a truth file (and, with --variants, of every variant)",
        description="Score predictions against a truth file, for archives that come with the answers "
                    "(faces-sample). Measuring only: the pipeline never reads a truth file.")
    score.add_argument("truth", type=Path)
    score.add_argument("--labels", type=Path, default=Path("results/label_val.txt"),
                       help="predictions to score (default: results/label_val.txt)")
    score.add_argument("--variants", action="store_true",
                       help="also score each variant of the finished run in this folder, at its own "
                            "tune threshold, beside its test HTER and interval (a markdown table)")
    weights = commands.add_parser(
        "weights", help="put pretrained starting weights where the pipeline takes them from (data/weights/)",
        description="fetch: copy torchvision's ImageNet file of each architecture into data/weights/, from the "
                    "torch hub cache when it is there, else by downloading it. The weights stage then records "
                    "it and `dvc repro` retrains the variants that start from it.")
    weights.add_argument("action", choices=["fetch"])
    pretrained = [arch for arch, spec in ARCHITECTURES.items() if spec.imagenet]
    weights.add_argument("archs", nargs="*", choices=pretrained, default=pretrained,
                         help="architectures (default: every one with ImageNet weights)")
    grid = commands.add_parser(
        "grid", help="compare the recipes of this repository's DVC experiments, paired with the default",
        description="Read the finished DVC experiments (queued over the recipes to compare, and replicates: "
                    "train.seed, split.fold), group them into recipes by how their params differ from params.yaml, "
                    "and print per recipe and scored name the mean HTER over its replicates (out of fold: every "
                    "train face, each labelled by the fold model that never saw it; or on the test part) and the "
                    "paired 95 % interval of its difference from the baseline (the default recipe's BASELINE), "
                    "on the replicates both ran.")
    grid.add_argument("--baseline", default="vgg64", help="the default recipe's scored name to compare with "
                                                          "(default: vgg64)")
    grid.add_argument("--part", choices=["oof", "test"], default="oof",
                      help="the faces to pair: out of fold (default) or the test part")
    grid.add_argument("--baseline-recipe", default="default",
                      help="the recipe to compare with, as the table names it (default: default)")
    grid.add_argument("--names", help="comma-separated scored names to read (default: every one each experiment ran)")
    grid.add_argument("--all-commits", action="store_true", help="also the experiments of earlier commits")
    grid.add_argument("--json", type=Path, help="also write the rows as JSON here")
    extract = commands.add_parser(
        "extract", help="write the archive's train_img/, val_img/ and label_train.txt into FOLDER",
        description="Check ARCHIVE as the pipeline's check stage does, then extract train_img/, val_img/ and "
                    "label_train.txt into FOLDER (replaced whole, only once everything is there), whatever "
                    "the archive's top folder. The pipeline itself never extracts: it reads the archive.")
    extract.add_argument("archive", type=Path)
    extract.add_argument("folder", type=Path)
    return parser


def label_folder(folder: Path, model_path: Path, out: Path, threshold: float | None, tta: bool | None,
                 device_name: str, precision: str | None = None) -> dict:
    model, info = load_model(model_path)
    if threshold is None:
        if "threshold" not in info:
            raise FaceclsError(f"{model_path}: holds no threshold (not exported by the predict stage); "
                               "pass --threshold")
        threshold = float(info["threshold"])
    tta = bool(info.get("tta", False)) if tta is None else tta
    # Files written before the knob existed were scored in fp32 on CPU.
    precision = precision or info["config"].get("precision", "fp32")
    if precision not in PRECISIONS:
        raise FaceclsError(f"{model_path}: precision must be one of {PRECISIONS}, got {precision!r}")
    numbered, gaps = list_numbered_images(folder)
    if gaps:
        print(f"warning: {folder}: {len(gaps)} numbers missing (first {gaps[:5]}); lines follow numeric order",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        array_path = Path(tmp) / "images.npy"
        decode_to_array(FileSource(), [str(p) for _, p in numbered], array_path, f"decode {folder.name}")
        images = np.load(array_path, mmap_mode="r")
        device = pick_device(device_name)
        resolved = scoring_precision(precision, info["config"], device)
        labels = label_images(model.to(device), images, threshold, tta=tta, device=device, precision=resolved)
        del images
    write_label_file(out, labels)
    return {"out": out, "n": len(labels), "class_0": int((labels == 0).sum()), "threshold": threshold,
            "tta": tta, "variant": info["config"].get("variant"), "precision": resolved}


@fail_cleanly
def main() -> None:
    args = _parser().parse_args()
    if args.command == "label":
        out = args.out or args.folder.resolve().parent / f"label_{args.folder.resolve().name}.txt"
        result = label_folder(args.folder, args.model, out, args.threshold, args.tta, args.device, args.precision)
        print(f"wrote {result['n']} labels to {result['out']} ({result['class_0']} with an accessory; "
              f"model {result['variant']}, threshold {result['threshold']:.3f}, tta {result['tta']}, "
              f"precision {result['precision']})")
    elif args.command == "score":
        score(args.truth, args.labels, args.variants)
    elif args.command == "grid":
        rows, context = grid_table(Path("."), args.baseline, args.names.split(",") if args.names else None,
                                   args.all_commits, baseline_recipe=args.baseline_recipe, part=args.part)
        print(grid_markdown(rows, context, args.part), end="")
        if args.json:
            write_json(args.json, {"rows": rows, "context": {k: str(v) for k, v in context.items()}})
    elif args.command == "extract":
        print(f"extracted into {args.folder}: {format_counts(extract_archive(args.archive, args.folder))}")
    elif args.command == "weights":
        for arch in args.archs:
            path, source = fetch_imagenet(arch)
            print(f"{arch}: {path} from {source}")


def score(truth_path: Path, labels_path: Path, variants: bool) -> None:
    predicted, truth = read_pair(labels_path, truth_path)
    s = score_labels(predicted, truth)
    print(f"{labels_path}: HTER {s['hter']:.4f} (recall 0 {s['recall_0']:.4f}, recall 1 {s['recall_1']:.4f}) "
          f"on {s['n']} faces of {truth_path}")
    if variants:
        print()
        print(rows_markdown(variant_rows(truth, label_with_every_variant(load_params()))), end="")


if __name__ == "__main__":
    main()
