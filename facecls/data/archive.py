"""The exercise archive as it comes from elsewhere: what may be trusted in it, and reading its entries.

Every entry is checked from the central directory before any of its bytes is used:
nothing may land outside a target folder, links are refused, the declared sizes must
fit images of 64x64 (a decompression bomb is refused), and an encrypted entry or an
unknown compression method is named. Whatever top folder holds ``train_img/``,
``val_img/`` and ``label_train.txt`` is the root.

Entries are then read by their offset in the archive (``read_entries``), which the
check stage's manifest records: the index stage and its workers open the file and parse
no central directory (a second per process for 120,000 entries), and skip zipfile's own
per-entry reader (five times the bare read). Every entry read must have its own name in
its local header and the CRC the central directory declared, and is never inflated past
its declared size.
"""

from __future__ import annotations

import bz2
import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from facecls.errors import FaceclsError, one_line
from facecls.params import check, get

LABEL_FILE = "label_train.txt"
IMAGE_FOLDERS = ("train_img", "val_img")
# macOS adds resource forks under __MACOSX/ when it zips a folder: never data.
JUNK_FOLDERS = ("__MACOSX/",)
# A 64x64 image is a few kB; a generous allowance per entry still stops a
# bomb that declares gigabytes.
MAX_BYTES_PER_ENTRY = 4 * 1024 * 1024
MAX_BYTES_PER_IMAGE = 64 * 1024
MAX_TOTAL_SLACK = 64 * 1024 * 1024
MAX_RATIO = 200  # real JPEGs barely compress; text compresses ~10x
_LOCAL_HEADER = struct.Struct("<4s2xH18xHH")  # signature, flags, name and extra field lengths
_ENCRYPTED = 0x1 | 0x40  # traditional and strong encryption
_PATCHED = 0x20  # "compressed patched data": no reader implements it
_UTF8_NAME = 0x800
# A newline or another control character in a name would break every one-line message
# (and the CSV indexes) that shows it; no image set needs one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# What zipfile raises for a damaged or exotic archive: a bad header or central
# directory, a name that is not valid UTF-8, or a read past the end of a truncated file.
_DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError, ValueError, struct.error, OverflowError)


def archive_setting(params: dict, source: str = "params.yaml") -> Path:
    """``data.archive``, checked to be a path (whether it exists is the check stage's business)."""
    archive = get(params, "data.archive", source)
    check(isinstance(archive, str) and archive != "", source, "data.archive", "a path", archive)
    return Path(archive)


def entry_source(archive: str | Path, name: str) -> str:
    """How an error names an entry: ``data/x.zip: entry 'faces/train_img/5.jpg'``."""
    return f"{archive}: entry {name!r}"


def open_zip(archive: Path) -> zipfile.ZipFile:
    try:
        if not archive.exists():
            raise FaceclsError(f"{archive}: archive not found (set data.archive in params.yaml)")
        if archive.is_dir():
            raise FaceclsError(f"{archive}: is a folder, expected a .zip archive")
        return zipfile.ZipFile(archive)
    except _DAMAGED:
        raise FaceclsError(f"{archive}: not a zip archive, or a truncated one") from None
    except OSError as exc:
        raise FaceclsError(f"{archive}: cannot read ({exc.strerror or exc})") from None


def _check_readable(archive: Path, info: zipfile.ZipInfo) -> None:
    if info.flag_bits & _ENCRYPTED:
        raise FaceclsError(f"{entry_source(archive, info.filename)} is encrypted; "
                           "re-create the archive without a password")
    if info.compress_type not in _INFLATE or info.flag_bits & _PATCHED:
        raise FaceclsError(f"{entry_source(archive, info.filename)} uses compression method "
                           f"{info.compress_type}, which cannot be read (use deflate)")


def _check_entry(archive: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if not name:
        raise FaceclsError(f"{archive}: an entry has an empty name")
    # The parts a path library would see ("a//./b" is a/b), without its cost per entry.
    parts = [part for part in name.replace("\\", "/").split("/") if part not in ("", ".")]
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
        raise FaceclsError(f"{entry_source(archive, name)} would be written outside the target folder")
    if _CONTROL.search(info.orig_filename):  # zipfile's filename stops at a NUL byte
        raise FaceclsError(f"{entry_source(archive, name)} has a control character in its name")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise FaceclsError(f"{entry_source(archive, name)} is a symbolic link, refused")
    if info.file_size > MAX_BYTES_PER_ENTRY or (
        info.compress_size > 0 and info.file_size / info.compress_size > MAX_RATIO
        and info.file_size > 1024 * 1024
    ):
        raise FaceclsError(f"{entry_source(archive, name)} declares {info.file_size} bytes, "
                           "too large for a 64x64 image (decompression bomb?)")
    if info.compress_size > MAX_BYTES_PER_ENTRY:  # read whole into memory: bounded like the rest
        raise FaceclsError(f"{entry_source(archive, name)} declares {info.compress_size} compressed bytes, "
                           "too large for a 64x64 image")
    if not info.is_dir():
        _check_readable(archive, info)


@dataclass
class ArchiveLayout:
    root: str  # the prefix before train_img/, "" or "something/"
    members: list[zipfile.ZipInfo]  # the files of train_img/, val_img/ and the label file

    @property
    def label_entry(self) -> str:
        return self.root + LABEL_FILE


def _refuse_clashes(archive: Path, members: list[zipfile.ZipInfo]) -> None:
    """A file and a folder of the same name cannot both be extracted: the later entry is named."""
    files: set[str] = set()
    folders: set[str] = set()
    for info in members:
        parts = info.filename.split("/")
        parents = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if info.filename in folders or parents & files:
            raise FaceclsError(f"{entry_source(archive, info.filename)} clashes with another entry "
                               "(a file and a folder of the same name)")
        files.add(info.filename)
        folders |= parents


def find_layout(archive: Path, zf: zipfile.ZipFile) -> ArchiveLayout:
    infos = [i for i in zf.infolist() if not i.filename.startswith(JUNK_FOLDERS)]
    for info in infos:
        _check_entry(archive, info)
    total = sum(i.file_size for i in infos)
    if total > len(infos) * MAX_BYTES_PER_IMAGE + MAX_TOTAL_SLACK:
        raise FaceclsError(f"{archive}: declares {total / 2**20:.0f} MiB uncompressed for {len(infos)} "
                           "entries, far beyond 64x64 images (decompression bomb?)")
    roots = set()
    for info in infos:
        parts = info.filename.split("/")
        if "train_img" in parts[:-1]:
            cut = parts.index("train_img")
            roots.add("".join(p + "/" for p in parts[:cut]))
    if not roots:
        raise FaceclsError(f"{archive}: no train_img/ folder in the archive")
    if len(roots) > 1:
        shown = ", ".join(sorted(r or "(top level)" for r in roots))
        raise FaceclsError(f"{archive}: several folders hold train_img/ ({shown}); expected one")
    root = roots.pop()
    names = {i.filename for i in infos}
    if root + LABEL_FILE not in names:
        raise FaceclsError(f"{archive}: missing {root}{LABEL_FILE}")
    if not any(n.startswith(root + "val_img/") and not n.endswith("/") for n in names):
        raise FaceclsError(f"{archive}: missing {root}val_img/ (or it holds no files)")
    folders = tuple(f"{root}{folder}/" for folder in IMAGE_FOLDERS)
    wanted = [i for i in infos
              if not i.is_dir() and (i.filename == root + LABEL_FILE or i.filename.startswith(folders))]
    _refuse_clashes(archive, wanted)
    return ArchiveLayout(root=root, members=wanted)


class Entry(NamedTuple):
    """What reading one entry takes, from the central directory: small enough to send to a worker."""
    name: str
    offset: int  # of its local header
    compressed: int
    size: int
    crc: int
    method: int


def entry_of(archive: Path, info: zipfile.ZipInfo) -> Entry:
    """The entry of ``info``, refused if no reader can read it."""
    _check_readable(archive, info)
    return Entry(info.filename, info.header_offset, info.compress_size, info.file_size, info.CRC, info.compress_type)


def _lzma_raw(data: bytes, size: int) -> bytes:
    # Zip's LZMA: a 2-byte version, the length of the properties, 5 bytes of properties
    # (lc/lp/pb and the dictionary size), then a raw LZMA1 stream.
    if len(data) < 4:
        raise lzma.LZMAError("truncated LZMA header")
    (props_size,) = struct.unpack_from("<H", data, 2)
    props = data[4:4 + props_size]
    if props_size != 5 or len(props) != 5:
        raise lzma.LZMAError(f"LZMA properties of {props_size} bytes, expected 5")
    lc_lp_pb, dict_size = props[0], int.from_bytes(props[1:5], "little")
    # No back-reference reaches beyond the entry's own size: a larger dictionary, which
    # liblzma would allocate in full, is never needed.
    options = {"id": lzma.FILTER_LZMA1, "lc": lc_lp_pb % 9, "lp": lc_lp_pb // 9 % 5, "pb": lc_lp_pb // 45,
               "dict_size": max(min(dict_size, size), 4096)}
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[options]).decompress(data[4 + props_size:], size)


# Each yields at most the declared size: an entry that inflates beyond it is cut there
# and then fails its CRC, as zipfile's own reader does.
_INFLATE = {
    zipfile.ZIP_STORED: lambda data, size: data[:size],
    zipfile.ZIP_DEFLATED: lambda data, size: zlib.decompressobj(-15).decompress(data, size),
    zipfile.ZIP_BZIP2: lambda data, size: bz2.BZ2Decompressor().decompress(data, size),
    zipfile.ZIP_LZMA: _lzma_raw,
}


def _read_entry(archive: str, file, entry: Entry) -> bytes:
    def damaged(problem: str) -> FaceclsError:
        return FaceclsError(f"{entry_source(archive, entry.name)} is damaged ({problem})")

    if entry.offset < 0:  # zipfile's arithmetic on a damaged directory can go below the start
        raise damaged("Bad offset of its local header")
    try:
        file.seek(entry.offset)
        header = file.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size:
            raise damaged("Truncated file header")
        signature, flags, name_length, extra_length = _LOCAL_HEADER.unpack(header)
        if signature != b"PK\x03\x04":
            raise damaged("Bad magic number for file header")
        name = file.read(name_length).decode("utf-8" if flags & _UTF8_NAME else "cp437", errors="replace")
        if name.replace(os.sep, "/") != entry.name:  # as zipfile gives names on this system
            raise damaged(f"its local header names {name[:80]!r}" + ("..." if len(name) > 80 else ""))
        file.seek(extra_length, os.SEEK_CUR)
        stored = file.read(entry.compressed)
    except OSError as exc:
        raise FaceclsError(f"{archive}: cannot read ({exc.strerror or one_line(exc)})") from None
    try:
        # Not asked for 0 bytes: zlib takes a limit of 0 as no limit.
        data = _INFLATE[entry.method](stored, entry.size) if entry.size else b""
    except (*_DAMAGED, OSError) as exc:  # bz2 reports a bad stream as OSError
        raise damaged(one_line(exc)) from None
    if len(data) < entry.size:
        raise damaged(f"ends after {len(data)} of its {entry.size} bytes")
    if zlib.crc32(data) != entry.crc:
        raise damaged(f"Bad CRC-32 for file {entry.name!r}")
    return data


def read_entries(archive: str | Path, entries: Iterable[Entry]) -> Iterator[bytes]:
    """The bytes of each entry, in turn, from one open file."""
    try:
        file = open(archive, "rb")
    except OSError as exc:
        raise FaceclsError(f"{archive}: cannot read ({exc.strerror or exc})") from None
    with file:
        for entry in entries:
            yield _read_entry(str(archive), file, entry)


@dataclass(frozen=True)
class ArchiveSource:
    """Images read from the archive, for facecls.data.decode: pickled to each worker as a path only."""
    archive: str

    def blobs(self, entries: list[Entry]) -> Iterator[tuple[bytes, str]]:
        for entry, data in zip(entries, read_entries(self.archive, entries)):
            yield data, entry_source(self.archive, entry.name)
