"""Block devices: zeroing one with progress (Wipe), telling two names of one device apart."""
from __future__ import annotations

import asyncio
import fcntl
import os
import struct

BLKZEROOUT = 0x127F  # _IO(0x12, 127)
WIPE_CHUNK = 8 * 1024 * 1024  # the most a Cancel waits for


async def wipe_device(path: str, on_progress) -> None:
    """Zero a block device chunk by chunk off the event loop, calling
    on_progress(fraction); cancelling stops between chunks."""
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC)  # O_EXCL: refuse if in use
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        done = 0
        while done < size:
            length = min(WIPE_CHUNK, size - done)
            chunk = loop.run_in_executor(None, _zero_range, fd, done, length)
            try:
                await asyncio.shield(chunk)
            except asyncio.CancelledError:
                # The chunk under way cannot be stopped; the Job ends when it
                # has, so that nothing is written after Cancel said "cancelled"
                # (and the device is no longer held open).
                await _settle(chunk)
                raise
            done += length
            on_progress(done / size)
    finally:
        os.close(fd)


async def _settle(future: asyncio.Future) -> None:
    """Wait for `future` to end, whatever cancels the waiter meanwhile."""
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            continue
        except Exception:
            return
    if not future.cancelled():
        future.exception()  # retrieved: a failed chunk after Cancel is no news


def _zero_range(fd: int, start: int, length: int) -> None:
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack("QQ", start, length))
    except OSError:
        zeros = bytes(1024 * 1024)
        for off in range(start, start + length, len(zeros)):
            os.pwrite(fd, zeros[:min(len(zeros), start + length - off)], off)
        os.fsync(fd)


def same_device(a: str, b: str) -> bool:
    try:
        return os.stat(a).st_rdev == os.stat(b).st_rdev
    except OSError:
        return False
