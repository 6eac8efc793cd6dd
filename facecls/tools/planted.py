"""Planted label errors, to measure the audit: flip a seeded share of an archive's labels, then see
how many of them the audit flags.

    python -m facecls.tools.planted flip ARCHIVE OUT.zip --fraction 0.03 --seed 0
        # OUT.zip: ARCHIVE with those lines of label_train.txt flipped; OUT.flipped.txt: their numbers
    dvc exp run -S data.archive=$PWD/OUT.zip audit
    python -m facecls.tools.planted check OUT.flipped.txt results/audit/label_issues.csv

``check`` prints precision and recall at the flagged count: of the faces flagged, how many were
flipped; of the faces flipped, how many were flagged. (The archive's own real label errors count
against precision: a flagged face that was not flipped may still be wrong.)
"""

from __future__ import annotations

import argparse
import csv
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from facecls.atomic import atomic_path, write_text
from facecls.errors import FaceclsError, fail_cleanly

LABELS = "label_train.txt"


def flip_labels(archive: Path, out: Path, fraction: float, seed: int) -> list[int]:
    """Write ``out``: ``archive`` with a seeded ``fraction`` of its label lines flipped (0 <-> 1);
    return the flipped line numbers (= image numbers), ascending."""
    with zipfile.ZipFile(archive) as source:
        names = [i.filename for i in source.infolist() if PurePosixPath(i.filename).name == LABELS
                 and not i.filename.startswith("__MACOSX/")]
        if len(names) != 1:
            raise FaceclsError(f"{archive}: expected one {LABELS}, found {len(names)}")
        lines = source.read(names[0]).decode("utf-8-sig").splitlines()
        rng = np.random.default_rng(seed)
        flipped = sorted(rng.choice(len(lines), size=round(fraction * len(lines)), replace=False).tolist())
        for i in flipped:
            lines[i] = {"0": "1", "1": "0"}[lines[i].strip()]
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as target:
            for info in source.infolist():
                data = ("\n".join(lines) + "\n").encode() if info.filename == names[0] else source.read(info)
                target.writestr(info, data)
    return [i + 1 for i in flipped]


def check_flags(flipped_path: Path, issues_path: Path) -> dict:
    """Precision and recall of the audit's flags against the planted flips."""
    try:
        flipped = {int(line) for line in flipped_path.read_text().split()}
        with open(issues_path, newline="", encoding="utf-8") as f:
            flagged = [int(PurePosixPath(row["file"]).stem) for row in csv.DictReader(f)]
    except FileNotFoundError as exc:
        raise FaceclsError(f"{exc.filename}: not found") from None
    except (ValueError, KeyError, TypeError):
        raise FaceclsError(f"{flipped_path} or {issues_path}: not a list of numbers and a label-issues file") from None
    hits = len(flipped & set(flagged))
    return {"flipped": len(flipped), "flagged": len(flagged), "flagged_and_flipped": hits,
            "precision": hits / len(flagged) if flagged else 0.0, "recall": hits / len(flipped) if flipped else 0.0}


@fail_cleanly
def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m facecls.tools.planted", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    flip = commands.add_parser("flip", help="write a copy of ARCHIVE with a seeded share of its labels flipped")
    flip.add_argument("archive", type=Path)
    flip.add_argument("out", type=Path)
    flip.add_argument("--fraction", type=float, default=0.03)
    flip.add_argument("--seed", type=int, default=0)
    check = commands.add_parser("check", help="precision and recall of the audit's flags against the flips")
    check.add_argument("flipped", type=Path)
    check.add_argument("issues", type=Path, nargs="?", default=Path("results/audit/label_issues.csv"))
    args = parser.parse_args()
    if args.command == "flip":
        flipped = flip_labels(args.archive, args.out, args.fraction, args.seed)
        listing = args.out.with_suffix(".flipped.txt")
        write_text(listing, "".join(f"{n}\n" for n in flipped))
        print(f"{args.out}: {len(flipped)} labels flipped (seed {args.seed}); their numbers in {listing}")
    else:
        r = check_flags(args.flipped, args.issues)
        print(f"{r['flagged']} flagged, {r['flipped']} flipped, {r['flagged_and_flipped']} both: "
              f"precision {r['precision']:.3f}, recall {r['recall']:.3f} at the flagged count")


if __name__ == "__main__":
    main()
