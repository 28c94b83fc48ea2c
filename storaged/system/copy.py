"""Copying a block device to another, off the event loop: large direct-I/O
chunks, zero chunks skipped where the target reads zeros anyway (a fresh thin
volume), progress as it goes, stoppable between chunks."""
from __future__ import annotations

import mmap
import os
import threading
from typing import Callable

from ..errors import Cancelled, Failed

CHUNK = 4 * 1024 * 1024  # as dd bs=4M; large enough that each call costs little


def copy_device(src: str, dst: str, size: int, *, skip_zeros: bool,
                progress: Callable[[float], None], stop: threading.Event,
                chunk: int = CHUNK) -> int:
    """Copy `size` bytes; returns how many bytes were written (zeros skipped)."""
    try:
        fd_in = os.open(src, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError as exc:
        raise Failed(f"cannot open {src}: {exc.strerror}") from None
    try:
        try:
            fd_out = os.open(dst, os.O_WRONLY | os.O_DIRECT | os.O_EXCL | os.O_CLOEXEC)
        except OSError as exc:
            raise Failed(f"cannot open {dst}: {exc.strerror}") from None
        try:
            return copy_fd(fd_in, fd_out, size, skip_zeros, progress, stop, chunk)
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)


def copy_fd(fd_in: int, fd_out: int, size: int, skip_zeros: bool, progress, stop: threading.Event,
            chunk: int = CHUNK) -> int:
    """The copy itself, between open descriptors (also storagectl's vol-download)."""
    buf = mmap.mmap(-1, chunk)  # page-aligned, as O_DIRECT wants
    zeros = bytes(chunk)
    offset = written = 0
    try:
        while offset < size:
            if stop.is_set():
                raise Cancelled("the copy was cancelled")
            want = min(chunk, size - offset)
            view = memoryview(buf)[:want]
            n = os.preadv(fd_in, [view], offset)
            if n <= 0:
                raise Failed(f"reading at byte {offset}: the source ended early")
            if not (skip_zeros and buf[:n] == zeros[:n]):
                done = 0
                while done < n:
                    done += os.pwritev(fd_out, [view[done:n]], offset + done)
                written += n
            view.release()
            offset += n
            progress(offset / size)
        os.fsync(fd_out)
    except OSError as exc:
        raise Failed(f"copy failed at byte {offset}: {exc.strerror}") from None
    finally:
        buf.close()
    return written
