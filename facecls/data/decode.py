"""Decoding many images into one N x 64 x 64 x 3 uint8 .npy: in chunks, by a process pool
when the set is large, each chunk decoded into memory and written with one slice.

The bytes come from a source: image files on disk (``FileSource``, for `facecls label`)
or entries of the archive (``facecls.data.archive.ArchiveSource``, for the index stage).
A source is pickled to each worker with its chunk and opens what it reads itself.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from facecls.data.images import SIZE, decode_image
from facecls.errors import FaceclsError

CHUNK = 1024
# Below this many images a process pool costs more than it saves.
PARALLEL_FROM = 4096
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class Source(Protocol):
    def blobs(self, items: list) -> Iterator[tuple[bytes, str]]:
        """The encoded bytes of each item, and how an error names it."""


class FileSource:
    """Image files on disk; items are their paths."""

    def blobs(self, items: list[str]) -> Iterator[tuple[bytes, str]]:
        for path in items:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                raise FaceclsError(f"{path}: cannot read ({exc.strerror or exc})") from None
            yield data, path


def _decode_chunk(source: Source, items: list, array_path: str, start: int) -> int:
    # Decoded into memory first, then written to the memory map with one slice: row by row
    # through np.memmap the Python around each decode cost a tenth of the stage. Into a new
    # file, the slice (19 us an image) costs half a plain write() (40 us) here. No flush
    # (msync): the mapped pages are the page cache every later reader sees.
    decoded = np.empty((len(items), SIZE, SIZE, 3), dtype=np.uint8)
    resized = 0
    for row, (data, where) in enumerate(source.blobs(items)):
        decoded[row], was_resized = decode_image(data, where)
        resized += was_resized
    images = np.load(array_path, mmap_mode="r+")
    images[start:start + len(items)] = decoded
    return resized


def _end_with_parent(parent: int) -> None:
    """Pool initializer. A parent killed outright (SIGKILL) cannot stop its workers, and they would
    wait on their queue forever; on Linux the kernel sends them SIGKILL when the parent dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def _reserve_space(path: Path) -> None:
    """Allocate the whole file now: a memory-mapped write to a full disk kills the
    process with SIGBUS (no message, temp folder left behind); this fails with ENOSPC."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise


def decode_to_array(source: Source, items: Sequence, array_path: Path, desc: str, workers: int | None = None) -> int:
    """Decode ``items`` of ``source`` into a new .npy at ``array_path``; returns how many were resized."""
    images = np.lib.format.open_memmap(array_path, mode="w+", dtype=np.uint8, shape=(len(items), SIZE, SIZE, 3))
    del images
    _reserve_space(array_path)
    chunks = [(i, list(items[i:i + CHUNK])) for i in range(0, len(items), CHUNK)]
    workers = workers or os.cpu_count() or 1
    resized = 0
    # disable=None: no progress bar when stderr is not a terminal (logs, CI).
    with tqdm(total=len(items), desc=desc, unit="img", mininterval=1.0, disable=None) as bar:
        if workers == 1 or len(items) < PARALLEL_FROM:
            for start, chunk in chunks:
                resized += _decode_chunk(source, chunk, str(array_path), start)
                bar.update(len(chunk))
        else:
            with ProcessPoolExecutor(workers, initializer=_end_with_parent, initargs=(os.getpid(),)) as pool:
                futures = [(len(chunk), pool.submit(_decode_chunk, source, chunk, str(array_path), start))
                           for start, chunk in chunks]
                try:
                    for size, future in futures:
                        resized += future.result()
                        bar.update(size)
                except BrokenProcessPool:
                    raise FaceclsError(f"{array_path}: a decoding process was killed (out of memory?)") from None
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
    return resized
