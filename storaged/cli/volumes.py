"""storagectl's verbs for thin pools, snapshots, clones, renames, activation
and raw image transfers (registered into storaged.cli's table of verbs)."""
from __future__ import annotations

import asyncio
import os
import sys
import time

from dbus_fast import Variant

from .. import client
from ..api import POOL_IFACE, VOLUME_IFACE
from ..model.sizes import human_size
from .progress import Progress, follow_job, run_job
from .session import CliError
from .transfer import download, upload
from .verbs import POOL, SIZE, VOLUME, arg, verb

NEW_NAME = arg("name", metavar="NAME", help="the new volume's name")
PERCENT = dict(type=int, metavar="PERCENT")


@verb("pool-thin-create", "add a thin pool to a pool, for thin volumes", POOL, SIZE,
      arg("--autoextend-threshold", default=80, help="extend it when this full (default 80; "
          "100: never)", **PERCENT),
      arg("--autoextend-percent", default=20, help="by this share of its size (default 20)",
          **PERCENT))
async def pool_thin_create(c, a):
    options = {"autoextend_threshold": Variant("u", a.autoextend_threshold),
               "autoextend_percent": Variant("u", a.autoextend_percent)}
    await c.call(await c.pool(a.pool), POOL_IFACE, "CreateThinPool", "ta{sv}", [a.size, options])
    print(f"Thin pool of {human_size(a.size)} created in pool {a.pool}")


@verb("vol-snapshot", "take a snapshot of a volume (thin for a thin volume)", POOL, VOLUME,
      NEW_NAME, arg("--size", type=SIZE[1]["type"], help="a thick volume's snapshot space "
                    "(default 20 %% of the volume)"))
async def vol_snapshot(c, a):
    options = {"size": Variant("t", a.size)} if a.size is not None else {}
    await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Snapshot", "sa{sv}",
                 [a.name, options])
    print(f"Snapshot {a.name} of {a.volume} created in pool {a.pool}")


@verb("vol-revert", "bring a snapshot's data back into its origin (the snapshot goes; a job)",
      POOL, arg("volume", metavar="SNAPSHOT", help="the snapshot's name"), job=True)
async def vol_revert(c, a):
    if await run_job(c, a, await c.volume(a.pool, a.volume), VOLUME_IFACE, "Revert"):
        print(f"Snapshot {a.volume} merged back into its origin")


@verb("vol-clone", "copy a volume into a new one (a job; instant for a thin volume)",
      POOL, VOLUME, NEW_NAME,
      arg("--thin", action="store_true", default=None, help="the clone is a thin volume"),
      arg("--thick", dest="thin", action="store_false", help="the clone is a thick volume"),
      arg("--pool", dest="target", metavar="POOL", help="clone into this other pool"), job=True)
async def vol_clone(c, a):
    options = {} if a.thin is None else {"thin": Variant("b", a.thin)}
    if a.target:
        options["pool"] = Variant("o", await c.pool(a.target))
    path = await c.volume(a.pool, a.volume)
    _, job = await c.call(path, VOLUME_IFACE, "Clone", "sa{sv}", [a.name, options])
    if await follow_job(c, a, job):
        print(f"Volume {a.volume} cloned to {a.name} in pool {a.target or a.pool}")


@verb("vol-rename", "rename a volume (its object path stays)", POOL, VOLUME, NEW_NAME)
async def vol_rename(c, a):
    await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Rename", "s", [a.name])
    print(f"Volume {a.volume} renamed to {a.name} in pool {a.pool}")


@verb("vol-activate", "give a volume its block device (in a shared pool: lock it for this host)",
      POOL, VOLUME, arg("--shared", action="store_true",
                        help="in a shared pool, a shared lock: other hosts may activate it too "
                             "(live migration)"))
async def vol_activate(c, a):
    options = {"shared": Variant("b", True)} if a.shared else {}
    await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Activate", "a{sv}", [options])
    print(f"Volume {a.volume} activated{' shared' if a.shared else ''}")


@verb("vol-deactivate", "take a volume's block device away (refused while it is open)", POOL, VOLUME)
async def vol_deactivate(c, a):
    await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Deactivate")
    print(f"Volume {a.volume} deactivated")


async def open_volume(c, path: str, mode: str) -> int:
    """A file descriptor of the volume's block device, from Volume.Open."""
    try:
        return await c.storaged.open_volume(path, mode)
    except client.Error as exc:
        raise c.error(exc, path, "Open") from None


FILE = arg("file", metavar="FILE", help="a raw image file (qcow2 is not converted)")
PROGRESS = arg("--no-progress", action="store_true", help="plain lines, not a progress bar")


async def transfer(c, a, what: str, run) -> None:
    progress = Progress(what, sys.stderr.isatty() and not a.no_progress)
    start = time.monotonic()
    loop = asyncio.get_running_loop()
    size, written = await loop.run_in_executor(
        None, run, lambda f: loop.call_soon_threadsafe(progress, f))
    await asyncio.sleep(0)  # the last progress call
    progress.end()
    took = max(time.monotonic() - start, 1e-6)
    print(f"{what}: {human_size(size)} in {took:.1f} s ({size / took / 2**20:.0f} MiB/s), "
          f"{human_size(written)} of it data", file=sys.stderr)


@verb("vol-upload", "write a raw image into a volume (sparse: holes are not written as data)",
      POOL, VOLUME, FILE, PROGRESS)
async def vol_upload(c, a):
    path = await c.volume(a.pool, a.volume)
    try:
        src = os.open(a.file, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise CliError("InvalidArgument", f"cannot read {a.file}: {exc.strerror}") from None
    try:
        size = os.fstat(src).st_size
        capacity = await c.get(path, VOLUME_IFACE, "Capacity")
        if size > capacity:
            raise CliError("NoSpace", f"{a.file} has {size} bytes; volume {a.volume} only {capacity}")
        thin = await c.get(path, VOLUME_IFACE, "Thin")
        dev = await open_volume(c, path, "w")
        try:
            await transfer(c, a, "vol-upload", lambda p: (size, upload(src, dev, size, thin, p)))
        finally:
            os.close(dev)
    finally:
        os.close(src)
    print(f"{a.file} written to volume {a.volume}")


@verb("vol-download", "read a volume into a raw image file (zero blocks become holes)",
      POOL, VOLUME, FILE, PROGRESS)
async def vol_download(c, a):
    path = await c.volume(a.pool, a.volume)
    capacity = await c.get(path, VOLUME_IFACE, "Capacity")
    dev = await open_volume(c, path, "r")
    try:
        try:
            dst = os.open(a.file, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise CliError("InvalidArgument", f"cannot write {a.file}: {exc.strerror}") from None
        try:
            await transfer(c, a, "vol-download",
                           lambda p: (capacity, download(dev, dst, capacity, p)))
        finally:
            os.close(dst)
    finally:
        os.close(dev)
    print(f"Volume {a.volume} written to {a.file}")
