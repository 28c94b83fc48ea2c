"""Snapshots, Revert (merging a snapshot back), Rename, Activate and Deactivate."""
from __future__ import annotations

import asyncio
import logging
import re

from ..errors import AlreadyExists, Busy, InvalidArgument, NoSpace, NotFound
from ..model.names import check_lv_in_vg
from ..model.state import Pool, Volume
from .jobs import Job
from .journal import REVERT, Intent
from .volumes import round_up

log = logging.getLogger(__name__)

# LVM's words when a merge waits for the origin's next activation.
_DEFERRED = re.compile(r"next activation|will occur|delay|deferr|origin.*(open|in use)", re.I)
COW_DEFAULT_SHARE = 5  # a thick snapshot's default size: 1/5 (20 %) of its origin


class Snapshots:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    def _origin_of(self, pool: Pool, vol: Volume) -> Volume:
        origin = pool.volumes.get(vol.origin)
        if origin is None:
            raise NotFound(f"the origin of snapshot {vol.name!r} is not in pool {pool.name!r}")
        return origin

    async def snapshot_volume(self, pool: Pool, name: str, new: str, size: int | None) -> Volume:
        check_lv_in_vg(new, pool.vg_name, "snapshot name")
        vol = self.volume(pool, name)
        self._refuse_in_shared_pool(pool, "snapshots")
        if size is not None and size <= 0:
            raise InvalidArgument("option size: a snapshot's copy-on-write space must be above zero")
        if vol.snapshot:
            raise InvalidArgument(f"{name!r} is itself a copy-on-write snapshot, and LVM takes no "
                                  f"snapshot of one; take it of its origin instead")
        if vol.thin and size is not None:
            raise InvalidArgument(f"option size: {name!r} is thin, so its snapshot is thin too "
                                  f"and takes space from the thin pool as it is written; leave size out")
        if pool.volume_named(new):
            raise AlreadyExists(f"pool {pool.name!r} already has a volume named {new!r}")
        self._require_dm("a snapshot")
        async with pool.lock:
            self._require_running(pool)
            if vol.thin:
                await self.lvm.lvcreate_snapshot(pool.vg_name, vol.name, new, None)
            else:
                cow = round_up(size or vol.capacity // COW_DEFAULT_SHARE, pool.extent_size)
                if cow > pool.available:
                    raise NoSpace(f"pool {pool.name!r} has {pool.available} bytes available; the "
                                  f"snapshot's copy-on-write space needs {cow}")
                await self.lvm.lvcreate_snapshot(pool.vg_name, vol.name, new, cow)
            return await self._found(pool, new)

    def revert_volume(self, pool: Pool, name: str, uid: int) -> Job:
        """Merge snapshot `name` into its origin: the origin gets the snapshot's
        data back, and the snapshot goes."""
        vol = self.volume(pool, name)
        if not vol.origin:
            raise InvalidArgument(f"{name!r} is not a snapshot; Revert merges a snapshot back "
                                  f"into its origin, so call it on the snapshot")
        origin = self._origin_of(pool, vol)
        self._require_dm("merging a snapshot")
        self._require_running(pool)
        if origin.open:
            raise Busy(f"origin {origin.name!r} is open (a guest or a mount uses it); its data "
                       f"would change under it: close it first")
        snap, target = vol.name, origin.name

        async def work(job: Job) -> None:
            async with pool.lock:
                self._set_intent(pool.uuid, Intent(REVERT, key=snap, source=target))
                said = await self.lvm.lvconvert_merge(pool.vg_name, snap)
                if _DEFERRED.search(said):
                    log.info("revert %s/%s: LVM defers the merge to %s's next activation (%s); "
                             "reactivating it now", pool.name, snap, target, said)
                    await self._reactivate(pool, target)
            await self._wait_merged(pool, snap, job)  # LVM merges on its own: no lock held
            self._set_intent(pool.uuid, None)
        return self.jobs.start(f"revert {pool.name}/{target} to snapshot {snap}", uid, work)

    async def _reactivate(self, pool: Pool, name: str) -> None:
        """Deactivating and activating an origin starts a merge LVM deferred."""
        await self.lvm.lvchange_activate(pool.vg_name, name, False)
        await self.lvm.lvchange_activate(pool.vg_name, name, True)

    async def _wait_merged(self, pool: Pool, snap: str, job: Job | None, limit: float = 3600) -> None:
        """Until the snapshot is gone (merged); progress from its shrinking use."""
        start = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            await self._refresh([pool])
            vol = pool.volume_named(snap)
            if vol is None:
                return
            if start is None:
                start = vol.data_usage or 1.0
            if job and vol.snapshot and start:
                job.set_progress(1 - vol.data_usage / start)
            if loop.time() > deadline:
                raise Busy(f"the merge of {snap!r} has not finished after {limit:.0f} s; "
                           f"the next start of storaged goes on with it")
            await asyncio.sleep(0.5)

    async def _finish_revert(self, pool: Pool, intent: Intent) -> None:
        """After a crash: a merge LVM still holds is started by reactivating the origin."""
        vol = pool.volume_named(intent.key)
        if vol is not None:
            origin = pool.volume_named(intent.source)
            if origin is not None and origin.open:
                log.error("pool %s: the merge of %s waits until %s is closed", pool.name,
                          intent.key, intent.source)
                return
            try:
                await self.lvm.lvconvert_merge(pool.vg_name, intent.key)
            except Exception as exc:  # already merging: LVM says so
                log.info("pool %s: %s", pool.name, getattr(exc, "message", exc))
            await self._reactivate(pool, intent.source)
            await self._wait_merged(pool, intent.key, None)
        self._set_intent(pool.uuid, None)

    async def rename_volume(self, pool: Pool, name: str, new: str) -> None:
        check_lv_in_vg(new, pool.vg_name, "new name")
        async with pool.lock:
            self._require_running(pool)
            vol = self.volume(pool, name)
            if new == vol.name:
                return
            if pool.volume_named(new) or new == pool.thin_pool:
                raise AlreadyExists(f"pool {pool.name!r} already has a volume named {new!r}")
            await self.lvm.lvrename(pool.vg_name, vol.name, new)
            await self._refresh([pool])

    async def set_volume_active(self, pool: Pool, name: str, active: bool) -> None:
        vol = self.volume(pool, name)
        self._require_dm("activating or deactivating a volume")
        async with pool.lock:
            self._require_running(pool)
            if not active and vol.open:
                raise Busy(f"volume {name!r} is open (a guest or a mount uses it); close it first")
            if vol.active != active:
                await self.lvm.lvchange_activate(pool.vg_name, vol.name, active)
                await self._refresh([pool])
