"""One daemon per directory: a lock file in each directory the daemon writes.

Two daemons on one config or state directory would both recover the same
intents and build the same pools; two embedded instances in one folder would
take each other's bus socket. The lock is an flock, so it goes with the
process however it ends (SIGKILL included) and a stale file means nothing.
"""
from __future__ import annotations

import fcntl
import os

from .errors import Busy

LOCK_NAME = "storaged.lock"


def hold(directory: str) -> int:
    """Lock `directory` for this process (the descriptor keeps it); Busy naming
    the other instance's pid if one holds it."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    path = os.path.join(directory, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Busy(f"storaged is already running on {directory} (pid {pid})") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
