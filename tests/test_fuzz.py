"""Bounded fuzzing: a damaged archive either goes through the check stage, the index stage and
`facecls extract`, or fails as one FaceclsError, never otherwise, and leaves no temporary file."""

from __future__ import annotations

import random
import shutil
import traceback
import zipfile

from facecls.data.extract import extract_archive
from facecls.data.index import build_index
from facecls.data.manifest import check_archive, write_manifest
from facecls.errors import FaceclsError
from tests.archives import exercise_entries, leftovers, write_zip

MUTATIONS = 150
SEED = 20240611
# Every method zipfile writes: each has its own decompressor, which damage must not get past.
COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Truncate, or overwrite a few random bytes (sometimes a whole run)."""
    data = bytearray(data)
    if rng.random() < 0.25:
        return bytes(data[: rng.randrange(len(data) + 1)])
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(data))
        if rng.random() < 0.2:
            data[at: at + 16] = bytes(rng.randrange(256) for _ in range(16))
        else:
            data[at] = rng.randrange(256)
    return bytes(data)


def test_damaged_archives_fail_only_as_facecls_errors(tmp_path):
    rng = random.Random(SEED)
    entries = exercise_entries([0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1], val_numbers=range(1, 4))
    pristine = [write_zip(tmp_path / f"pristine{method}.zip", entries, method).read_bytes() for method in COMPRESSIONS]
    outcomes = {"checked, indexed and extracted": 0, "refused": 0}
    for case in range(MUTATIONS):
        work = tmp_path / f"case{case}"
        work.mkdir()
        if rng.random() < 0.5:
            # Damage the zip itself: headers, central directory, compressed streams.
            (work / "faces.zip").write_bytes(mutate(rng.choice(pristine), rng))
        else:
            # Damage one member and zip it properly: reaches the label parser and image decoder.
            damaged = dict(entries)
            name = rng.choice(list(damaged))
            damaged[name] = mutate(damaged[name], rng)
            write_zip(work / "faces.zip", damaged, rng.choice(COMPRESSIONS))
        try:
            write_manifest(work / "data" / "manifest.json", check_archive(work / "faces.zip"))
            build_index(work / "data" / "manifest.json", work / "data" / "prepared", 0.25, 0)
            extract_archive(work / "faces.zip", work / "data" / "raw")
            outcomes["checked, indexed and extracted"] += 1
        except FaceclsError as exc:
            assert "\n" not in str(exc), f"case {case}: {exc}"
            outcomes["refused"] += 1
        except Exception:
            raise AssertionError(f"case {case} (seed {SEED}) escaped as:\n{traceback.format_exc()}") from None
        if (work / "data").exists():
            assert leftovers(work / "data") == [], f"case {case} left temporary files"
        shutil.rmtree(work)
    # The mutations must exercise both outcomes, or the test proves nothing.
    assert outcomes["checked, indexed and extracted"] > 5 and outcomes["refused"] > 50, outcomes
