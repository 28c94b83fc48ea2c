"""A plain block device: nothing to bring up, only checks."""
from __future__ import annotations

import os
import stat

from ..errors import Busy, Degraded, InvalidArgument
from ..model.definitions import DeviceSource
from ..system import runner
from .base import SourceBackend


def _is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _mounted(path: str) -> bool:
    rdev = os.stat(path).st_rdev
    want = f"{os.major(rdev)}:{os.minor(rdev)}"
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(line.split()[2] == want for line in f)


class DeviceBackend(SourceBackend):
    """A plain block device: checked, never written to but by LVM."""

    async def create(self, src: DeviceSource) -> tuple[str, bool]:
        if not os.path.exists(src.path):
            raise InvalidArgument(f"device {src.path} does not exist")
        if not _is_block(src.path):
            raise InvalidArgument(f"device {src.path} is not a block device")
        if _mounted(src.path):
            raise Busy(f"device {src.path} is mounted")
        res = await runner.run(["blkid", "-p", "-o", "export", src.path], check=False, timeout=30)
        if res.returncode == 0 and "TYPE=" in res.stdout:
            kind = next((ln.split("=", 1)[1] for ln in res.stdout.splitlines()
                         if ln.startswith(("TYPE=", "PTTYPE="))), "a signature")
            raise InvalidArgument(f"device {src.path} carries {kind}; storaged does not "
                                  f"overwrite a signature: if its data is not needed, "
                                  f"erase it (wipefs --all {src.path}) and try again")
        return src.path, False

    async def up(self, src: DeviceSource) -> str:
        if not _is_block(src.path):
            raise Degraded(f"device {src.path} is missing")
        return src.path

    def device(self, src: DeviceSource) -> str | None:
        return src.path if _is_block(src.path) else None

    def problem(self, src: DeviceSource) -> str | None:
        return None if _is_block(src.path) else f"device {src.path} is missing"

    async def down(self, src: DeviceSource) -> None:
        return None
