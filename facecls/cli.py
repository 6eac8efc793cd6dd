"""The `facecls` command: label any folder of face images with a trained model, outside DVC."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from facecls.errors import FaceclsError, fail_cleanly


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
    return parser


def label_folder(folder: Path, model_path: Path, out: Path, threshold: float | None, tta: bool | None,
                 device_name: str) -> dict:
    import numpy as np

    from facecls.checkpoint import load_model
    from facecls.device import pick_device
    from facecls.images import list_numbered_images
    from facecls.prediction import label_images, write_label_file
    from facecls.prepare import decode_to_array

    model, info = load_model(model_path)
    if threshold is None:
        if "threshold" not in info:
            raise FaceclsError(f"{model_path}: holds no threshold (not exported by the predict stage); "
                               "pass --threshold")
        threshold = float(info["threshold"])
    tta = bool(info.get("tta", False)) if tta is None else tta
    numbered, gaps = list_numbered_images(folder)
    if gaps:
        print(f"warning: {folder}: {len(gaps)} numbers missing (first {gaps[:5]}); lines follow numeric order",
              file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        array_path = Path(tmp) / "images.npy"
        decode_to_array([p for _, p in numbered], array_path, f"decode {folder.name}")
        images = np.load(array_path, mmap_mode="r")
        device = pick_device(device_name)
        labels = label_images(model.to(device), images, threshold, tta=tta, device=device)
        del images
    write_label_file(out, labels)
    return {"out": out, "n": len(labels), "class_0": int((labels == 0).sum()), "threshold": threshold,
            "tta": tta, "variant": info["config"].get("variant")}


@fail_cleanly
def main() -> None:
    args = _parser().parse_args()
    if args.command == "label":
        out = args.out or args.folder.resolve().parent / f"label_{args.folder.resolve().name}.txt"
        result = label_folder(args.folder, args.model, out, args.threshold, args.tta, args.device)
        print(f"wrote {result['n']} labels to {result['out']} ({result['class_0']} with an accessory; "
              f"model {result['variant']}, threshold {result['threshold']:.3f}, tta {result['tta']})")
if __name__ == "__main__":
    main()
