"""A pool's volumes: allocate, deallocate, resize, wipe; the fast path that
learns a new LV from LVM's metadata backup instead of a second report."""
from __future__ import annotations

import errno
import logging
import os

from ..errors import AlreadyExists, Busy, Failed, InvalidArgument, NoSpace, StoragedError
from ..lvm.metadata import find_lv, seqno as backup_seqno, vg_report_from_text
from ..model.definitions import parse_volume
from ..model.names import check_lv_in_vg, check_lv_name
from ..model.sizes import check_size
from ..model.state import Pool, Volume
from ..system.block import wipe_device
from .jobs import Job

log = logging.getLogger(__name__)


class Volumes:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def allocate_volume(self, pool: Pool, name: str, size: int, thin: bool = False) -> Volume:
        check_lv_in_vg(name, pool.vg_name)
        check_size(size)
        if thin and not pool.thin_pool:
            raise self._no_thin_pool(pool)
        async with pool.lock:
            self._require_running(pool)
            if pool.volume_named(name):
                raise AlreadyExists(f"pool {pool.name!r} already has a volume named {name!r}")
            needed = round_up(size, pool.extent_size)
            if thin:
                return await self._allocate_thin(pool, name, needed)
            if needed > pool.available:
                raise NoSpace(f"pool {pool.name!r} has {pool.available} bytes available; "
                              f"{name!r} needs {needed}")
            # LVM rounds up to whole extents anyway; asking for that exact size
            # also spares callers its "not a multiple of 512" refusal.
            try:
                await self.lvm.lvcreate(pool.vg_name, name, needed)
            except StoragedError as exc:
                raise self._explained(pool, exc) from None
            # A refresh from the metadata text may have learnt it first.
            vol = await self._learn_new_volume(pool, name, needed) or pool.volume_named(name)
            if vol is None:
                await self._refresh([pool])
                vol = pool.volume_named(name)
                if vol is None:
                    raise Failed(f"lvcreate reported success but {name!r} is not in {pool.vg_name!r}")
            return vol

    def _explained(self, pool: Pool, exc: StoragedError) -> StoragedError:
        """LVM's error, with the reason when a PV's file system is full (LVM
        itself only sees a write error on a loop device)."""
        notes = [n for n in (self._backend(s).space_problem(s) for s in pool.definition.sources) if n]
        if notes:
            exc.message = f"{exc.message}; " + "; ".join(notes)
        return exc

    async def _allocate_thin(self, pool: Pool, name: str, size: int) -> Volume:
        """A thin volume: no VG space of its own, so no NoSpace check (overcommit)."""
        try:
            await self.lvm.lvcreate_thin(pool.vg_name, pool.thin_pool, name, size)
        except StoragedError as exc:
            raise self._explained(pool, exc) from None
        return await self._learn_new_volume(pool, name, size, thin=True) or \
            await self._found(pool, name)

    async def _found(self, pool: Pool, name: str) -> Volume:
        """A volume LVM just made, from a report."""
        await self._refresh([pool])
        vol = pool.volume_named(name)
        if vol is None:
            raise Failed(f"LVM reported success but {name!r} is not in {pool.vg_name!r}")
        return vol

    async def _learn_new_volume(self, pool: Pool, name: str, size: int,
                                thin: bool = False) -> Volume | None:
        """Fast path: take the new LV's UUID from the VG's metadata text (LVM's
        backup, or the PV's metadata area), saving a second LVM command (which
        costs as much as the lvcreate itself)."""
        text = await self._metadata_text(pool)
        new = find_lv(text, name) if text else None
        if new is None or new.seqno <= pool.seqno or new.uuid in pool.volumes:
            return None
        if not self._only_our_commit(pool, new.seqno):
            # Another host committed too: the whole text, diffed as the poll
            # would, still spares a report (seconds in a shared VG).
            known = {v.uuid: (v.active, v.open) for v in pool.volumes.values()}
            report = vg_report_from_text(text, pool.pv_ids, known, self.activation)
            if report is None or report.vg.uuid != pool.vg_uuid:
                return None
            self._apply(pool, report)
            return pool.volume_named(name)
        # In a shared VG, lvcreate activates the new LV with an exclusive lock.
        vol = Volume(uuid=new.uuid, pool_uuid=pool.uuid, name=name, path=f"/dev/{pool.vg_name}/{name}",
                     capacity=size, active=self.activation, thin=thin,
                     lock="exclusive" if pool.definition.lock_type and self.activation else "none")
        pool.seqno = new.seqno
        pool.volumes[vol.uuid] = vol
        if thin:
            pool.virtual_allocation += size
        else:
            pool.allocation += size
            pool.available -= size
        self.listener.volume_added(pool, vol)
        self._publish(pool)
        return vol

    async def _learn_removed_volume(self, pool: Pool, vol: Volume) -> bool:
        """Fast path for lvremove, as for lvcreate: the metadata text shows a
        newer seqno without the LV, so no report is needed."""
        text = await self._metadata_text(pool)
        seq = backup_seqno(text) if text else None
        if seq is None or seq <= pool.seqno or find_lv(text, vol.name) is not None \
                or vol.uuid not in pool.volumes or not self._only_our_commit(pool, seq):
            return False
        if vol.snapshot or any(v.origin == vol.uuid for v in pool.volumes.values()):
            return False  # a snapshot's space, or snapshots removed with it: a report tells
        pool.seqno = seq
        del pool.volumes[vol.uuid]
        if vol.thin:
            pool.virtual_allocation -= vol.capacity
        else:
            pool.allocation -= vol.capacity
            pool.available += vol.capacity
        self.listener.volume_removed(pool, vol)
        self._publish(pool)
        return True

    def _only_our_commit(self, pool: Pool, seqno: int) -> bool:
        """In a shared pool another host commits too: the text tells only our
        own change when it is the one commit after what the pool knows (else
        the other host's commits in between would be taken as known)."""
        return not pool.definition.lock_type or seqno == pool.seqno + 1

    async def create_volume(self, pool: Pool, xml: str) -> Volume:
        vdef = parse_volume(xml)
        return await self.allocate_volume(pool, vdef.name, vdef.capacity, thin=vdef.thin)

    async def deallocate_volume(self, pool: Pool, name: str) -> None:
        check_lv_name(name)
        async with pool.lock:
            self._require_running(pool)
            vol = self.volume(pool, name)
            await self.lvm.lvremove(pool.vg_name, vol.name)
            if not await self._learn_removed_volume(pool, vol) and vol.uuid in pool.volumes:
                await self._refresh([pool])

    def resize_volume(self, pool: Pool, name: str, size: int, shrink: bool, uid: int) -> Job:
        """Grow a volume; shrink it only when asked to (it destroys data)."""
        check_size(size)
        self._require_running(pool)
        vol = self.volume(pool, name)
        needed = round_up(size, pool.extent_size)
        if needed == vol.capacity:
            async def nothing(job: Job) -> None:
                log.info("volume %s/%s already has %d bytes: nothing to do", pool.name, name, needed)
            return self.jobs.start(f"resize {pool.name}/{name}", uid, nothing)
        if needed < vol.capacity and not shrink:
            raise InvalidArgument(f"shrinking {name!r} from {vol.capacity} to {needed} bytes "
                                  f"destroys data; to do it anyway, pass the option force=true "
                                  f"(storagectl vol-resize --force)")
        if needed - vol.capacity > pool.available:
            raise NoSpace(f"pool {pool.name!r} has {pool.available} bytes available; growing "
                          f"{name!r} needs {needed - vol.capacity}")

        async def work(job: Job) -> None:
            async with pool.lock:
                current = self.volume(pool, name)
                await self.lvm.lvresize(pool.vg_name, current.name, needed, needed < current.capacity)
                await self._refresh([pool])
        return self.jobs.start(f"resize {pool.name}/{name}", uid, work)

    def wipe_volume(self, pool: Pool, name: str, uid: int) -> Job:
        """Zero a volume (the device may do it by unmapping: BLKZEROOUT)."""
        self._require_running(pool)
        vol = self.volume(pool, name)
        if not vol.active or not os.path.exists(vol.path):
            raise Failed(f"volume {name!r} has no device node {vol.path} (it is not active"
                         + ("" if self.activation else "; LVM activation is off on this host") + ")")
        path = vol.path

        async def work(job: Job) -> None:
            try:
                await wipe_device(path, job.set_progress)
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise Busy(f"volume {name!r} is in use ({path} is open elsewhere)") from None
                raise Failed(f"cannot wipe {path}: {exc.strerror or exc}") from None
        return self.jobs.start(f"wipe {pool.name}/{name}", uid, work)


def round_up(size: int, extent: int) -> int:
    if extent <= 0:
        return size
    return -(-size // extent) * extent
