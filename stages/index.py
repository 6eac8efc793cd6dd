"""Stage index: label, split and decode every image of the archive that data/manifest.json lists
into data/prepared/ (uint8 arrays + CSV indexes)."""

from facecls.data.index import build_index, format_summary
from facecls.data.split import split_settings
from facecls.errors import fail_cleanly
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    test, seed, fold = split_settings(load_params())
    print(format_summary(build_index("data/manifest.json", "data/prepared", test, seed, fold=fold)))


if __name__ == "__main__":
    main()
