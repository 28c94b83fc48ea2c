"""Clones (a thin snapshot, or a new volume and a Job that copies) and Open
(a file descriptor of a volume's block device, for uploads and downloads)."""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading

from ..errors import AlreadyExists, Busy, Failed, InvalidArgument, NoSpace, StoragedError
from ..lvm.commands import OWN_TAG
from ..model.names import check_lv_in_vg
from ..model.state import Pool, Volume
from ..system.copy import copy_device
from .jobs import Job
from .journal import CLONE, Intent
from .volumes import round_up

log = logging.getLogger(__name__)


class Clones:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def clone_volume(self, pool: Pool, name: str, new: str, uid: int, *,
                           thin: bool | None = None, target: Pool | None = None) -> tuple[Volume, Job]:
        src = self.volume(pool, name)
        dest = target or pool
        check_lv_in_vg(new, dest.vg_name, "clone name")
        if dest.volume_named(new) or new == dest.thin_pool:
            raise AlreadyExists(f"pool {dest.name!r} already has a volume named {new!r}")
        want_thin = src.thin if thin is None and dest is pool else bool(thin)
        if want_thin and not dest.thin_pool:
            raise self._no_thin_pool(dest)
        needed = round_up(src.capacity, dest.extent_size)
        if not want_thin and needed > dest.available:
            raise NoSpace(f"pool {dest.name!r} has {dest.available} bytes available; a clone "
                          f"of {name!r} needs {needed}")
        self._require_dm("a clone")
        self._require_running(dest)
        if src.thin and want_thin and dest is pool:
            # A writable thin snapshot: instant, sharing every block until written.
            vol = await self.snapshot_volume(pool, name, new, None)
            return vol, self.jobs.start(f"clone {pool.name}/{name} to {new}", uid, _nothing)
        if not src.active or not os.path.exists(src.path):
            raise Failed(f"volume {name!r} is not active; Activate it first")
        if self._record(dest.uuid).intent:
            raise Busy(f"pool {dest.name!r} is finishing another operation; try again when it is done")
        async with dest.lock:
            # Intent first: a crash from here on removes the half-made clone at the next start.
            self._set_intent(dest.uuid, Intent(CLONE, key=new))
            try:
                if want_thin:
                    await self.lvm.lvcreate_thin(dest.vg_name, dest.thin_pool, new, needed)
                else:
                    await self.lvm.lvcreate(dest.vg_name, new, needed)
                vol = await self._found(dest, new)
            except BaseException:
                await self._remove_clone(dest, new)
                raise
        source, size = src.path, src.capacity

        async def work(job: Job) -> None:
            try:
                await _device_node(vol.path)
                await self._copy(source, vol.path, size, want_thin, job)
            except BaseException:
                await self._remove_clone(dest, new)
                raise
            self._set_intent(dest.uuid, None)
        return vol, self.jobs.start(f"clone {pool.name}/{name} to {dest.name}/{new}", uid, work)

    async def _copy(self, src: str, dst: str, size: int, sparse: bool, job: Job) -> None:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        last = [0.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.01 or fraction >= 1.0:
                last[0] = fraction
                loop.call_soon_threadsafe(job.set_progress, fraction)
        started = loop.time()
        copying = loop.run_in_executor(None, lambda: copy_device(
            src, dst, size, skip_zeros=sparse, progress=progress, stop=stop))
        try:
            written = await asyncio.shield(copying)
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next chunk; wait for it
            try:
                await copying
            except StoragedError:
                pass
            raise
        took = loop.time() - started
        log.info("copied %d bytes (%d written) from %s to %s in %.1f s (%.0f MiB/s)", size,
                 written, src, dst, took, size / max(took, 1e-6) / 2**20)

    async def _remove_clone(self, pool: Pool, name: str) -> None:
        """Leave nothing of a clone that did not finish."""
        try:
            if OWN_TAG in (await self.lvm.lv_tags(pool.vg_name)).get(name, []):
                await self.lvm.lvremove(pool.vg_name, name)
            self._set_intent(pool.uuid, None)
        except StoragedError as exc:
            log.error("pool %s: could not remove the unfinished clone %s (%s); the next start "
                      "of storaged removes it", pool.name, name, exc.message)
        await self._refresh([pool])

    def open_volume(self, pool: Pool, name: str, mode: str) -> int:
        """A file descriptor of the volume's block device: 'r', or 'w' (exclusive)."""
        if mode not in ("r", "w"):
            raise InvalidArgument(f"mode: {mode!r} is neither 'r' (read) nor 'w' (write)")
        vol = self.volume(pool, name)
        self._require_dm("opening a volume's block device")
        if not vol.active or not os.path.exists(vol.path):
            raise Failed(f"volume {name!r} is not active; Activate it first")
        flags = (os.O_RDONLY if mode == "r" else os.O_WRONLY | os.O_EXCL) | os.O_CLOEXEC
        try:
            return os.open(vol.path, flags)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise Busy(f"volume {name!r} is open elsewhere (a guest or a mount); writing "
                           f"needs it to itself") from None
            raise Failed(f"cannot open {vol.path}: {exc.strerror}") from None


async def _device_node(path: str, limit: float = 30) -> None:
    """udev makes a new LV's /dev/VG/LV a moment after lvcreate returns."""
    for _ in range(int(limit / 0.05)):
        if os.path.exists(path):
            return
        await asyncio.sleep(0.05)
    raise Failed(f"{path} did not appear within {limit:.0f} s of creating it")


async def _nothing(job: Job) -> None:
    """A Job that is done at once (an instant clone)."""


