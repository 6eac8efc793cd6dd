"""``python -m facecls.tools.demo``: regenerate data/demo-faces.zip and its val truth."""

from __future__ import annotations

import argparse
import os

from facecls.errors import fail_cleanly
from facecls.tools import demo
from facecls.tools.demo.archive import DEFAULT_SEED, DEFAULT_TRAIN, DEFAULT_VAL, write_demo_archive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facecls.tools.demo", description=demo.__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/demo-faces.zip", help="zip to write (default: %(default)s)")
    parser.add_argument("--truth", default="data/demo-faces-val-truth.txt",
                        help="val labels to write beside it (default: %(default)s)")
    parser.add_argument("--n-train", type=int, default=DEFAULT_TRAIN)
    parser.add_argument("--n-val", type=int, default=DEFAULT_VAL)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    counts = write_demo_archive(args.out, n_train=args.n_train, n_val=args.n_val, seed=args.seed,
                                truth_path=args.truth)
    megabytes = os.path.getsize(args.out) / 1e6
    summary = ", ".join(f"{split} {c[0]} accessory / {c[1]} none" for split, c in counts.items())
    print(f"wrote {args.out} ({megabytes:.2f} MB): {summary}; val truth in {args.truth}")


if __name__ == "__main__":
    fail_cleanly(main)()
