"""Raw images into and out of a volume's block device, through a file
descriptor from Volume.Open: large chunks, direct I/O where the sizes allow,
sparse both ways (holes in an image are not written as data; zero chunks of
a volume become holes in the downloaded file). Raw images only: a qcow2 file
would be copied as the bytes it is."""
from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from typing import Callable

from ..system.copy import copy_fd

CHUNK = 4 * 1024 * 1024
ALIGN = 1024 * 1024  # holes are unmapped or zeroed in whole MiB; the edges are written
BLKDISCARD, BLKZEROOUT = 0x1277, 0x127F


def data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """The (start, end) ranges of a file that hold data, from SEEK_DATA/SEEK_HOLE."""
    ranges, pos = [], 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            break
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        ranges.append((start, end))
        pos = end
    return ranges


def _direct(fd: int, on: bool) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)


def _clear(dev: int, start: int, end: int, thin: bool) -> None:
    """Make [start, end) of the device read zeros: whole MiB unmapped on a thin
    volume (no pool space used) or zeroed by the device, the edges written."""
    inner_start, inner_end = -(-start // ALIGN) * ALIGN, end // ALIGN * ALIGN
    if inner_end <= inner_start:
        inner_start = inner_end = start
    for a, b in ((start, inner_start), (inner_end, end)):
        if b > a:
            os.pwrite(dev, bytes(b - a), a)
    if inner_end > inner_start:
        try:
            fcntl.ioctl(dev, BLKDISCARD if thin else BLKZEROOUT,
                        struct.pack("QQ", inner_start, inner_end - inner_start))
        except OSError:  # no discard here: write the zeros
            for a in range(inner_start, inner_end, CHUNK):
                os.pwrite(dev, bytes(min(CHUNK, inner_end - a)), a)


def upload(src: int, dev: int, size: int, thin: bool, progress: Callable[[float], None]) -> int:
    """Image `src` (size bytes) to the start of device `dev`; bytes of data written."""
    direct = size % 4096 == 0
    buf = mmap.mmap(-1, CHUNK)
    written = pos = 0
    ranges = data_ranges(src, size)
    try:
        for start, end in ranges + [(size, size)]:
            if start > pos:
                _direct(dev, False)
                _clear(dev, pos, start, thin)
            # Whole 4 KiB blocks around the data, so that direct I/O can take them.
            a, b = start // 4096 * 4096, min(-(-end // 4096) * 4096, size)
            if b > a:
                _direct(dev, direct)
            while a < b:
                n = min(CHUNK, b - a)
                view = memoryview(buf)[:n]
                got = os.preadv(src, [view], a)
                if got < n:
                    view[got:n] = bytes(n - got)
                done = 0
                while done < n:
                    done += os.pwritev(dev, [view[done:n]], a + done)
                view.release()
                written += n
                a += n
                progress(a / size)
            pos = max(pos, b)
        _direct(dev, False)
        os.fsync(dev)
    finally:
        buf.close()
    progress(1.0)
    return written


def download(dev: int, dst: int, size: int, progress: Callable[[float], None]) -> int:
    """Device `dev` to file `dst`, zero chunks left as holes; bytes of data written."""
    _direct(dev, size % 4096 == 0)
    os.ftruncate(dst, 0)
    written = copy_fd(dev, dst, size, True, progress, threading.Event())
    os.ftruncate(dst, size)  # a volume ending in zeros ends in a hole
    return written
