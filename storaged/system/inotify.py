"""The few inotify calls the watcher needs, through libc, readable on the event loop."""
from __future__ import annotations

import ctypes
import os
import struct

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")


class Inotify:
    """The few inotify calls we need, through libc; readable on the event loop."""

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.paths: dict[int, str] = {}

    def watch(self, path: str, mask: int) -> None:
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.paths[wd] = path

    def read(self) -> list[tuple[str, str]]:
        """(watched directory, file name) for each pending event."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        events, pos = [], 0
        while pos + _EVENT.size <= len(data):
            wd, _mask, _cookie, length = _EVENT.unpack_from(data, pos)
            name = data[pos + _EVENT.size:pos + _EVENT.size + length].rstrip(b"\0").decode(errors="replace")
            pos += _EVENT.size + length
            events.append((self.paths.get(wd, ""), name))
        return events

    def close(self) -> None:
        os.close(self.fd)
