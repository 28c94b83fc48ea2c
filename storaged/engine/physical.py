"""A running pool's physical volumes: add one (vgextend), remove one (a Job:
pvmove, vgreduce, pvremove, the source brought down)."""
from __future__ import annotations

import asyncio
import logging
import os

from dataclasses import replace

from ..errors import (AlreadyExists, Degraded, Failed, InvalidArgument, NoSpace, NotFound,
                      NotSupported, StoragedError)
from ..model.definitions import Source, parse_source, source_element, to_string
from ..lvm.commands import dm_name
from ..model.state import Pool
from .jobs import Job
from .journal import ADD_PV, Intent, REMOVE_PV

log = logging.getLogger(__name__)


class PhysicalVolumes:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def add_physical_volume(self, pool: Pool, xml: str) -> None:
        src = parse_source(xml)
        async with pool.lock:
            self._require_running(pool)
            for other in self.pools.values():
                if src.key in {s.key for s in other.definition.sources}:
                    raise AlreadyExists(f"pool {other.name!r} already uses {src.key}")
            self._set_intent(pool.uuid, Intent(ADD_PV, source=to_string(source_element(src))))
            pv_vgs = await self.lvm.pv_vg_names()
            try:
                device, made = await self._create_source(pool, src, pv_vgs)
            except BaseException:
                self._set_intent(pool.uuid, None)
                raise
            created_pv = extended = False
            definition = replace(pool.definition, sources=[*pool.definition.sources, src])
            try:
                owner = (await self.lvm.pv_vg_names()).get(device)
                if owner and owner != pool.vg_name:
                    raise AlreadyExists(f"{device} is a physical volume of volume group {owner!r}")
                if owner is None:
                    await self.lvm.pvcreate(device)
                    created_pv = True
                if owner != pool.vg_name:
                    await self.lvm.vgextend(pool.vg_name, [device])
                    extended = True
                # Inside the undo: a definition that cannot be written (config
                # directory full or read-only) takes the PV back out of the VG.
                self.store.save(definition)
            except BaseException:
                if extended:
                    try:
                        await self.lvm.vgreduce(pool.vg_name, device)
                    except StoragedError as undo:
                        log.error("undoing AddPhysicalVolume of %s: %s", pool.name, undo.message)
                await self._undo_build(pool, [device] if created_pv else [],
                                       [src] if made else [], [] if made else [src])
                self._set_intent(pool.uuid, None)
                raise
            pool.definition = definition
            self._set_intent(pool.uuid, None)
            await self._refresh([pool])

    async def _undo_add_pv(self, pool: Pool, src: Source) -> None:
        """After a crash in AddPhysicalVolume: keep it if the definition got it,
        else take back whatever of it reached LVM and the disk."""
        if src.key not in {s.key for s in pool.definition.sources}:
            backend = self._backend(src)
            device = await self._source_device(src)
            if device:
                owner = (await self.lvm.pv_vg_names()).get(device)
                if owner == pool.vg_name:
                    await self.lvm.vgreduce(pool.vg_name, device)
                    owner = ""
                if owner == "":
                    await self.lvm.pvremove(device)
                await backend.down(src)
            await self._destroy_if_created(pool, src)
        self._set_intent(pool.uuid, None)

    async def _source_device(self, src: Source) -> str | None:
        """The source's device, attaching an existing file to look at it."""
        backend = self._backend(src)
        device = backend.device(src)
        if device is None and backend.creates and backend.exists(src):
            device = await backend.up(src)
        return device

    def _find_source(self, pool: Pool, ident: str) -> Source:
        for src in pool.definition.sources:
            if ident in (src.key, self._backend(src).device(src)):
                return src
        raise NotFound(f"pool {pool.name!r} has no physical volume {ident!r} "
                       f"(name it as in its definition or by its device)")

    async def remove_physical_volume(self, pool: Pool, ident: str, uid: int) -> Job:
        """Move the data off a PV (pvmove), take it out of the VG and bring its
        source down; a file this pool created is removed."""
        self._require_running(pool)
        src = self._find_source(pool, ident)
        device = self._backend(src).device(src)
        if device is None:
            raise Degraded(f"{src.key} is not up; bring it back before removing it")
        reports = await self.lvm.fullreport()
        report = reports.get(pool.vg_name)
        pv = next((p for p in report.pvs if p.name == device), None) if report else None
        if pv is None:
            raise NotFound(f"{device} is not a physical volume of {pool.vg_name!r}")
        if len(report.pvs) == 1:
            raise InvalidArgument(f"{src.key} is the last physical volume of {pool.name!r}; "
                                  f"delete the pool instead")
        if pv.used > report.vg.free - pv.free:
            raise NoSpace(f"the other physical volumes of {pool.name!r} have "
                          f"{report.vg.free - pv.free} bytes free; {device} holds {pv.used}")
        if pv.used and not self.activation:
            # Without activation pvmove exits 0 having moved nothing, and leaves
            # a pvmove LV behind that not even --abort can remove.
            raise NotSupported(f"{device} holds data, and moving it off needs device-mapper; "
                               f"LVM activation is off on this host")

        async def work(job: Job) -> None:
            async with pool.lock:
                self._set_intent(pool.uuid, Intent(REMOVE_PV, key=src.key))
                if pv.used:
                    try:
                        await self._move_off(pool, device, job)
                    except BaseException:
                        self._set_intent(pool.uuid, None)
                        raise
                # The data is off the PV: the rest takes seconds and runs to
                # its end, a Cancel now comes too late. Cancelled half-way
                # (after vgreduce, before the definition was saved), it left
                # the definition naming a PV the VG no longer had.
                await to_the_end(self._remove_empty_pv(pool, device, src.key))
        return self.jobs.start(f"remove {src.key} from {pool.name}", uid, work)

    async def _remove_empty_pv(self, pool: Pool, device: str, key: str) -> None:
        await self.lvm.vgreduce(pool.vg_name, device)
        await self._finish_remove_pv(pool, key)
        await self._refresh([pool])

    async def _finish_remove_pv(self, pool: Pool, key: str) -> None:
        """Once the PV is out of the VG: its label, its source, its file, the
        definition. After a crash mid-move, LVM's own pvmove --abort first."""
        src = next((s for s in pool.definition.sources if s.key == key), None)
        if src is None:
            self._set_intent(pool.uuid, None)
            return
        backend = self._backend(src)
        device = await self._source_device(src)
        pv_vgs = await self.lvm.pv_vg_names()
        if device and pv_vgs.get(device) == pool.vg_name:
            # Interrupted before vgreduce: roll back (the data stays where it is).
            try:
                await self.lvm.pvmove_abort()
            except StoragedError as exc:
                log.warning("pvmove --abort: %s", exc.message)
            self._set_intent(pool.uuid, None)
            return
        if device and device in pv_vgs:
            await self.lvm.pvremove(device)
        await backend.down(src)
        await self._destroy_if_created(pool, src)
        pool.definition = replace(pool.definition, sources=[
            s for s in pool.definition.sources if s.key != key])
        self.store.save(pool.definition)
        self._set_intent(pool.uuid, None)

    async def _move_off(self, pool: Pool, device: str, job: Job) -> None:
        """pvmove, rolled back (pvmove --abort) if it fails, is cancelled or,
        as without activation, exits 0 having moved nothing.

        Cancelled, the pvmove is stopped LVM's way: `pvmove --abort` beside
        it, then it exits by itself (lvm.pvmove's on_cancel); it is killed only
        if it does not. Killed at once while it set the move up (LVs suspended
        and reloaded, udev cookies pending), it left a volume without its node."""
        was_active = sorted(v.name for v in pool.volumes.values() if v.active)
        aborted = False

        async def abort() -> None:
            nonlocal aborted
            log.info("pool %s: moving off %s cancelled; pvmove --abort", pool.name, device)
            await self.lvm.pvmove_abort()
            aborted = True
        try:
            await self.lvm.pvmove(device, job.set_progress, on_cancel=abort)
            after = (await self.lvm.fullreport()).get(pool.vg_name)
            left = next((p.used for p in after.pvs if p.name == device), 0) if after else 0
            if left:
                raise Failed(f"pvmove {device} left {left} bytes on it"
                             + ("" if self.activation else
                                " (moving data needs device-mapper; LVM activation is off here)"))
        except BaseException:
            if not aborted:
                try:
                    await asyncio.shield(self.lvm.pvmove_abort())
                except StoragedError as exc:
                    log.error("pvmove --abort after a failed move off %s: %s", device, exc.message)
            await asyncio.shield(self._ensure_live(pool, was_active))
            await asyncio.shield(self._refresh([pool]))
            raise

    async def _ensure_live(self, pool: Pool, names: list[str]) -> None:
        """After a move rolled back: each volume that was active before it
        has its device live (not suspended, no table left half-loaded) and its
        node. One dmsetup call, which reads no PV; an LVM command (which does,
        slowly on a slow PV) only for a volume that needs it."""
        if not names or not self.activation:
            return
        try:
            states = await self.lvm.dm_states()
        except StoragedError as exc:
            log.error("pool %s: after the move was rolled back: %s", pool.name, exc.message)
            return
        for name in names:
            attr = states.get(dm_name(pool.vg_name, name))
            path = f"/dev/{pool.vg_name}/{name}"
            if attr is None:
                why, fix = "not active", "activating"
            elif not attr.startswith("L-") or attr[2:3] == "s":
                why, fix = f"device-mapper state {attr}", "refreshing"
            elif not await _node_appears(path, NODE_WAIT):
                why, fix = f"no {path}", "refreshing"
            else:
                continue
            log.warning("pool %s: volume %s after the move was rolled back: %s; %s it",
                        pool.name, name, why, fix)
            try:
                if fix == "activating":
                    await self.lvm.lvchange_activate(pool.vg_name, name, True)
                else:
                    await self.lvm.lvchange_refresh(pool.vg_name, name)
            except StoragedError as exc:
                log.error("pool %s: %s volume %s: %s", pool.name, fix, name, exc.message)


async def to_the_end(coro):
    """Await coro to its end even if the caller is cancelled meanwhile (the
    cancel is then too late and is dropped); its result."""
    task = asyncio.ensure_future(coro)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            log.info("cancel too late: %s goes on to its end", getattr(coro, "__qualname__", coro))


# Seconds for udev to make an active volume's node before it is refreshed.
NODE_WAIT = 5.0


async def _node_appears(path: str, wait: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + wait
    while not os.path.exists(path):
        if loop.time() >= end:
            return False
        await asyncio.sleep(0.2)
    return True
