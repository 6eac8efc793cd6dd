"""Stage check: is data.archive what the pipeline expects, and what is in it? Writes data/manifest.json."""

from facecls.data.archive import archive_setting
from facecls.data.manifest import check_archive, counts, format_counts, write_manifest
from facecls.errors import fail_cleanly
from facecls.params import load_params


@fail_cleanly
def main() -> None:
    manifest = check_archive(archive_setting(load_params()))
    write_manifest("data/manifest.json", manifest)
    print(f"check: {format_counts(counts(manifest))}")


if __name__ == "__main__":
    main()
