"""Loop devices: find the one bound to a file, attach, detach.

The kernel tells which file each loop device is bound to in sysfs, so finding
an existing binding costs no command at all.
"""
from __future__ import annotations

import asyncio
import os
import time

from ..errors import Failed
from ..system import runner
from ..system.host import in_host_namespace
from ..system.runner import CommandFailed

LOSETUP = "losetup"
# How long a detached loop device may stay bound while someone (udev's probe
# after the VG was deactivated, typically) still holds it open.
RELEASE_TIMEOUT = 10.0


def _backing_file(sys_loop_dir: str) -> str | None:
    try:
        with open(os.path.join(sys_loop_dir, "backing_file"), encoding="utf-8",
                  errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


# A poll tick asks, for every pool, which loop device holds its file: one look
# at sysfs serves them all for a moment (with 100 pools each tick read 10,000
# sysfs files before, 41 % of a core while idle). Our own attach and detach
# forget it; a change made by someone else shows within SCAN_TTL.
SCAN_TTL = 0.1
_scan: tuple[float, dict[str, list[str]]] | None = None


def _bindings() -> dict[str, list[str]]:
    """Backing file -> the loop devices bound to it, in number order."""
    global _scan
    now = time.monotonic()
    if _scan is not None and now - _scan[0] < SCAN_TTL:
        return _scan[1]
    found: dict[str, list[str]] = {}
    try:
        names = [e.name for e in os.scandir("/sys/block") if e.name.startswith("loop")]
    except OSError:
        names = []
    for name in names:
        # An unbound device has no loop/ directory: the open fails at once
        # (a glob's look before it cost as much again).
        backing = _backing_file(f"/sys/block/{name}/loop")
        if backing:
            found.setdefault(backing, []).append("/dev/" + name)
    for devices in found.values():
        devices.sort(key=lambda dev: int(dev.removeprefix("/dev/loop")))
    _scan = (now, found)
    return found


def forget_bindings() -> None:
    global _scan
    _scan = None


def bound_to(path: str, resolve: bool = True) -> list[str]:
    """Every loop device now bound to `path` (normally none or one). With
    resolve=False the path is taken as it is, without touching the file system
    (a file on a network mount that may hang)."""
    want = os.path.realpath(path) if resolve else path
    return list(_bindings().get(want, []))


def bound_under(directory: str) -> list[str]:
    """Loop devices bound to a file below `directory` (no file system access)."""
    prefix = directory.rstrip("/") + "/"
    return [d for backing, devices in _bindings().items() if backing.startswith(prefix)
            for d in devices]


async def attach(path: str, resolve: bool = True) -> str:
    """Bind `path` to a loop device, reusing one already bound to it."""
    forget_bindings()
    existing = bound_to(path, resolve)
    if existing:
        return existing[0]
    try:
        # --nooverlap makes losetup itself reuse a device that was bound to the
        # same file by someone else between our look and this call.
        # In the host's mount namespace (under systemd): the loop device keeps
        # the file open through the mount it was opened by, and sysfs names
        # the file from that mount. Opened in storaged.service's own namespace,
        # a file on any mount but / (an NFS export, a separate /var) would be
        # named from its mount's root ("/netnfs.img") once the service, and
        # its namespace, ended: no daemon after it would know the device.
        res = await runner.run(in_host_namespace([LOSETUP, "--find", "--show", "--nooverlap", path],
                                                 f"attach {path} to a loop device", 25), timeout=30)
    except CommandFailed as exc:
        raise Failed(f"cannot attach {path} to a loop device: {runner._useful_lines(exc.stderr)}") from None
    finally:
        forget_bindings()
    return res.stdout.strip()


async def detach(device: str) -> None:
    """Detach `device` and wait until the kernel has let go of its file.

    `losetup --detach` of a device that is still open (udev probing it after
    `vgchange -an`, say) only marks it to clear itself on last close and
    returns at once; whoever comes next (an unmount of the file system the
    file is on) must not find it still bound."""
    try:
        await _detach(device)
    finally:
        forget_bindings()


async def _detach(device: str) -> None:
    name = os.path.basename(device)
    bound = _backing_file(f"/sys/block/{name}/loop")
    try:
        await runner.run([LOSETUP, "--detach", device], timeout=30)
    except CommandFailed as exc:
        if "No such device" in exc.stderr or "No such device or address" in exc.stderr:
            return
        raise Failed(f"cannot detach {device}: {runner._useful_lines(exc.stderr)}") from None
    deadline = time.monotonic() + RELEASE_TIMEOUT
    # Compared with the file it had, so that a device someone else binds
    # again at once does not count as still ours.
    while bound is not None and _backing_file(f"/sys/block/{name}/loop") == bound:
        if time.monotonic() > deadline:
            raise Failed(f"{device} is still open after it was detached (held by "
                         f"{', '.join(_holders(name)) or 'another process'}); "
                         f"it lets go of its file when that ends")
        await asyncio.sleep(0.05)


def _holders(name: str) -> list[str]:
    """Block devices stacked on loop device `name` (device-mapper, md)."""
    try:
        return sorted(os.listdir(f"/sys/block/{name}/holders"))
    except OSError:
        return []


async def detach_file(path: str, resolve: bool = True) -> None:
    devices = set(bound_to(path, resolve))
    # sysfs names the backing file as the process that attached it saw it; a
    # loop attached from another mount namespace (an earlier daemon's, under a
    # sandboxed unit) reads differently. losetup --associated matches the file
    # by device and inode, which every namespace agrees on.
    res = await runner.run([LOSETUP, "--associated", path, "--noheadings", "--raw",
                            "--output", "NAME"], check=False, timeout=30)
    if res.returncode == 0:
        devices |= set(res.stdout.split())
    for device in sorted(devices):
        await detach(device)
