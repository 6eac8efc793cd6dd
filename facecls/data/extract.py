"""`facecls extract ARCHIVE FOLDER`: the archive's images and label file as files, outside the
pipeline (which reads them straight from the archive), for whoever wants the JPEGs on disk.

The archive passes the check stage's checks first; every entry is then CRC-checked as it is
copied, and FOLDER is replaced only when all of it is there.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from facecls.atomic import atomic_dir
from facecls.data.archive import IMAGE_FOLDERS, entry_of, read_entries
from facecls.data.manifest import check_archive_layout, counts
from facecls.errors import FaceclsError, one_line


def extract_archive(archive: str | Path, target: str | Path) -> dict:
    """Extract train_img/, val_img/ and label_train.txt into ``target``, whatever the archive's top folder.

    On any failure the previous ``target`` (if any) is left as it was.
    """
    archive, target = Path(archive), Path(target)
    layout, manifest = check_archive_layout(archive)
    entries = [entry_of(archive, info) for info in layout.members]
    try:
        with atomic_dir(target) as tmp:
            # disable=None: no progress bar when stderr is not a terminal (logs, CI);
            # the with block closes it before any error line is printed.
            with tqdm(total=len(entries), desc="extract", unit="file", mininterval=1.0, disable=None) as bar:
                for entry, data in zip(entries, read_entries(archive, entries)):
                    destination = tmp / entry.name[len(layout.root):]
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    with open(destination, "wb") as f:
                        f.write(data)
                    bar.update()
            for folder in IMAGE_FOLDERS:
                (tmp / folder).mkdir(exist_ok=True)
    except OSError as exc:
        # Reads from the archive are turned into FaceclsError as they happen: this is the disk.
        raise FaceclsError(f"{target}: cannot write ({exc.strerror or one_line(exc)})") from None
    return counts(manifest)
