"""Start, Stop and Delete of pools."""
from __future__ import annotations

import asyncio
import logging

from ..errors import Busy, Degraded, Failed, InvalidArgument, NotFound, NotSupported, StoragedError
from ..lvm.commands import OWN_TAG
from ..model.state import Pool, PoolState
from .journal import DELETE, Intent

log = logging.getLogger(__name__)


class Lifecycle:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def start(self, pool: Pool) -> None:
        await self._start_pools([pool])

    async def _start_pools(self, pools: list[Pool], locked: bool = False) -> None:
        """Bring sources up side by side, one vgscan, one vgchange for all the
        VGs (shared ones join their lockspace instead), one report for all."""
        async def bring_up(pool: Pool):
            pool.source_problems = {}
            pool.bringup_errors = {}
            for src in pool.definition.sources:
                try:
                    await self._backend(src).up(src)
                except (Degraded, Failed, NotSupported, InvalidArgument) as exc:
                    log.warning("pool %s: %s", pool.name, exc.message)
                    pool.source_problems[src.key] = pool.bringup_errors[src.key] = exc.message

        held = [] if locked else pools
        for pool in held:
            await pool.lock.acquire()
        try:
            # Start is also the retry for a degraded or failed pool.
            pools = [p for p in pools if p.state != PoolState.RUNNING]
            # Pools side by side: at boot each loop attach is a transient unit
            # of systemd's, whose start is most of the time it takes.
            done = await asyncio.gather(*(bring_up(pool) for pool in pools), return_exceptions=True)
            if failed := next((r for r in done if isinstance(r, BaseException)), None):
                raise failed  # once every bring-up has ended, none left running unlocked
            if pools:
                await self.lvm.vgscan()
            for pool in pools:
                if pool.definition.lock_type:
                    # Shared: join the lockspace, activate nothing. Each volume
                    # is activated (and so locked) where a guest needs it.
                    await self._start_lockspace(pool)
                pool.state = PoolState.RUNNING
            await self._activate([p for p in pools if not p.definition.lock_type])
            await self._refresh(pools, starting=True)
            for pool in pools:
                self._mark_started(pool, pool.active)
        finally:
            for pool in held:
                pool.lock.release()

    async def _activate(self, pools: list[Pool]) -> None:
        """Every volume of these pools active: one vgchange for all of them
        (a boot with several pools waits for LVM and udev once); if that fails,
        one per pool, so that each pool's reason is its own."""
        if len(pools) > 1:
            try:
                await self.lvm.vgchange_activate([p.vg_name for p in pools], True)
                return
            except StoragedError:
                pass
        for pool in pools:
            try:
                await self.lvm.vgchange_activate([pool.vg_name], True)
            except NotFound:
                pass  # reported by the refresh
            except StoragedError as exc:
                pool.source_problems.setdefault("activation", exc.message)

    async def stop(self, pool: Pool) -> None:
        async with pool.lock:
            if not pool.active:
                return
            await self._refresh([pool])
            busy = sorted(v.name for v in pool.volumes.values() if v.open)
            if busy:
                raise Busy(f"pool {pool.name!r} cannot stop: volume(s) {', '.join(busy)} are open")
            await self._bring_down(pool)
            self._deactivate(pool)
            self._mark_started(pool, False)

    async def _bring_down(self, pool: Pool) -> None:
        try:
            if pool.definition.lock_type:
                await self._stop_lockspace(pool)  # its volumes deactivated, its leases given up
            else:
                await self.lvm.vgchange_activate(pool.vg_name, False)
        except NotFound:
            pass
        for src in reversed(pool.definition.sources):
            await self._backend(src).down(src)

    def _deactivate(self, pool: Pool) -> None:
        for vol in list(pool.volumes.values()):
            del pool.volumes[vol.uuid]
            self.listener.volume_removed(pool, vol)
        pool.state, pool.reason = PoolState.INACTIVE, ""
        pool.capacity = pool.allocation = pool.available = 0
        pool.virtual_allocation = pool.thin_pool_size = 0
        pool.thin_pool = ""
        pool.physical_volumes = []
        pool.seqno = 0
        pool.vg_uuid = ""
        self._publish(pool)

    async def delete(self, pool: Pool) -> None:
        """Remove the VG, its PV labels and the files this pool created; never
        what it did not create (an adopted VG, an admin's LV, a file it found)."""
        async with pool.lock:
            if pool.state != PoolState.INACTIVE:
                raise Busy(f"pool {pool.name!r} is {pool.state}; stop it before deleting it")
            if not self._record(pool.uuid).vg_created:
                raise NotSupported(
                    f"pool {pool.name!r} did not create volume group {pool.vg_name!r} (it "
                    f"adopted it), so Delete does not remove it. Undefine forgets the pool and "
                    f"leaves the volume group as it is; LVM's own vgremove removes it")
            self._set_intent(pool.uuid, Intent(DELETE))
            try:
                await self._delete_storage(pool)
            except Busy:
                self._set_intent(pool.uuid, None)  # refused before anything was removed
                raise
            self.store.remove_record(pool.uuid)  # the pool has nothing left
            self._deleted(pool)

    def _deleted(self, pool: Pool) -> None:
        """A deleted pool has no storage to bring back at boot: autostart off
        (SetAutostart turns it on again once it is built)."""
        self.store.set_autostart(pool.name, False)
        pool.autostart = False
        self._publish(pool)

    async def _delete_storage(self, pool: Pool, remove_vg: bool = True) -> None:
        """Remove the VG (if asked; Busy if it holds an LV that storaged did not
        allocate), the PV labels on this pool's sources and the files it
        created; bring the sources down. Safe to repeat."""
        devices = []
        for src in pool.definition.sources:
            backend = self._backend(src)
            try:
                if backend.device(src) or backend.exists(src) is not False:
                    devices.append(await backend.up(src))
            except (Degraded, NotSupported, Failed):
                pass  # gone already: nothing of it to remove
        try:
            if remove_vg and pool.definition.lock_type:
                # LVM removes a shared VG only from inside its lockspace, and
                # only once every other host has left it.
                self._require_shared_ready(pool.name)
                await self.lvm.lock_start(pool.vg_name, self.settings.host_id)
            if remove_vg:
                await self._remove_vg(pool)
            pv_vgs = await self.lvm.pv_vg_names()
            for device in devices:
                if device in pv_vgs and (not pv_vgs[device] or
                                         (remove_vg and pv_vgs[device] == pool.vg_name)):
                    await self.lvm.pvremove(device)
        finally:
            for src in pool.definition.sources:
                await self._backend(src).down(src)
        for src in self._record(pool.uuid).created_sources():
            await self._backend(src).destroy(src)  # a file (local or on NFS) this pool made

    async def _remove_vg(self, pool: Pool) -> None:
        """vgremove, unless the VG holds an LV storaged did not allocate (Busy).
        A shared VG's lockspace, joined for it, is left again if it stays."""
        try:
            try:
                lvs = await self.lvm.lv_tags(pool.vg_name)
            except NotFound:
                lvs = {}
            foreign = sorted(name for name, tags in lvs.items() if OWN_TAG not in tags)
            if foreign:
                raise Busy(f"volume group {pool.vg_name!r} holds volume(s) "
                           f"{', '.join(foreign)} that storaged did not allocate, and "
                           f"Delete removes only what storaged made: remove them first "
                           f"(start the pool and DeallocateVolume them, or lvremove) "
                           f"and delete again")
            try:
                await self.lvm.vgremove(pool.vg_name)
            except NotFound:
                pass
        except StoragedError:
            if pool.definition.lock_type:
                await self._quietly(pool, self.lvm.lock_stop(pool.vg_name))
            raise
