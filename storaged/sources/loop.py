"""Loop devices: find the one bound to a file, attach, detach.

The kernel tells which file each loop device is bound to in sysfs, so finding
an existing binding costs no command at all.
"""
from __future__ import annotations

import asyncio
import glob
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


def bound_to(path: str, resolve: bool = True) -> list[str]:
    """Every loop device now bound to `path` (normally none or one). With
    resolve=False the path is taken as it is, without touching the file system
    (a file on a network mount that may hang)."""
    want = os.path.realpath(path) if resolve else path
    found = []
    for d in glob.glob("/sys/block/loop*/loop"):
        backing = _backing_file(d)
        if backing and backing == want:
            found.append("/dev/" + d.split("/")[3])
    return sorted(found, key=lambda dev: int(dev.removeprefix("/dev/loop")))


def bound_under(directory: str) -> list[str]:
    """Loop devices bound to a file below `directory` (no file system access)."""
    prefix = directory.rstrip("/") + "/"
    return [d for d in (f"/dev/{p.split('/')[3]}" for p in glob.glob("/sys/block/loop*/loop"))
            if (_backing_file(f"/sys/block/{d[5:]}/loop") or "").startswith(prefix)]


async def attach(path: str, resolve: bool = True) -> str:
    """Bind `path` to a loop device, reusing one already bound to it."""
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
    return res.stdout.strip()


async def detach(device: str) -> None:
    """Detach `device` and wait until the kernel has let go of its file.

    `losetup --detach` of a device that is still open (udev probing it after
    `vgchange -an`, say) only marks it to clear itself on last close and
    returns at once; whoever comes next (an unmount of the file system the
    file is on) must not find it still bound."""
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
