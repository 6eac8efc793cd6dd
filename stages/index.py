"""Stage index: label, split and decode data/raw/ into data/prepared/ (uint8 arrays + CSV indexes)."""

from facecls.errors import fail_cleanly
from facecls.params import load_params
from facecls.prepare import build_index, format_summary


@fail_cleanly
def main() -> None:
    params = load_params()
    split = params["split"]
    summary = build_index("data/raw", "data/prepared", split["val_fraction"], split["seed"])
    print(format_summary(summary))


if __name__ == "__main__":
    main()
