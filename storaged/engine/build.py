"""Build (and CreatePool): a pool's files, loop devices, sessions, PVs, VG and
declared volumes; undone in reverse when a step fails."""
from __future__ import annotations

import logging

from ..errors import AlreadyExists, InvalidArgument, StoragedError
from ..model.definitions import Source, parse_pool
from ..model.state import Pool, PoolState
from ..system.block import same_device
from .journal import BUILD, CREATE, Intent
from .thin import THIN_POOL_LV

log = logging.getLogger(__name__)


class Build:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def create(self, xml: str) -> Pool:
        """Define, build and start; a failure leaves nothing behind."""
        definition = parse_pool(xml)
        if definition.thin_pool or any(v.thin for v in definition.volumes):
            self._require_dm(f"pool {definition.name!r}'s thin pool")  # before anything is made
        if definition.lock_type:
            self._require_shared_ready(definition.name)
        async with self._defs_lock:
            # Intent first: after a crash at any later step the next start rolls
            # this CreatePool back (see recovery.py).
            self._set_intent(definition.uuid, Intent(CREATE))
            try:
                pool = self._define(definition)
            except BaseException:
                self._set_intent(definition.uuid, None)
                raise
        if definition.autostart:
            # A created pool is the host's storage: back at every boot. Marked
            # before it is built, so that a failed create forgets the marker too.
            await self.set_autostart(pool, True)
        try:
            async with pool.lock:
                await self._build(pool, keep_up=True)
                await self._start_pools([pool], locked=True)
        except BaseException:
            async with self._defs_lock:
                self._forget(pool)
            self._set_intent(pool.uuid, None)
            raise
        self._set_intent(pool.uuid, None)
        return pool

    async def build(self, pool: Pool) -> None:
        if pool.definition.lock_type:
            self._require_shared_ready(pool.name)
        async with pool.lock:
            # Intent first: a crash mid-build of a pool that had nothing built
            # is rolled back at the next start (recovery.py) rather than
            # leaving its files attached and served as a half-built pool.
            record = self._record(pool.uuid)
            self._set_intent(pool.uuid, Intent(BUILD, fresh=not (record.vg_created or record.created)))
            try:
                await self._build(pool, keep_up=pool.active)
            finally:
                self._set_intent(pool.uuid, None)

    async def _build(self, pool: Pool, *, keep_up: bool) -> None:
        was = pool.state
        self._set_state(pool, PoolState.BUILDING, "")
        made: list[Source] = []  # sources whose create() made their file now
        brought_up: list[Source] = []
        created_pvs: list[str] = []
        created_vg, extended, created_lvs = False, [], 0
        try:
            pv_vgs = await self.lvm.pv_vg_names()
            devices = []
            for src in pool.definition.sources:
                device, new = await self._create_source(pool, src, pv_vgs)
                brought_up.append(src)
                if new:
                    made.append(src)
                devices.append(device)
            if devices:
                # What the sources just brought up hold (a built pool's own PVs).
                pv_vgs = await self.lvm.pv_vg_names()
            vg_exists = any(vg == pool.vg_name for vg in pv_vgs.values())
            new_devices = [d for d in devices if pv_vgs.get(d) != pool.vg_name]
            for device in new_devices:
                if pv_vgs.get(device):
                    raise AlreadyExists(f"{device} is a physical volume of "
                                        f"{self._vg_owner(pv_vgs[device])}, not of {pool.vg_name!r}")
            record = self._record(pool.uuid)
            if vg_exists and new_devices and not record.vg_created:
                # Never put a PV into a VG this pool did not create: Delete would
                # then remove what an admin made. Adopting a VG is explicit.
                lvs = await self.lvm.lv_tags(pool.vg_name)
                raise AlreadyExists(
                    f"volume group {pool.vg_name!r} already exists ({len(lvs)} logical "
                    f"volume(s)) and pool {pool.name!r} did not create it: storaged adds no "
                    f"physical volume to it. To adopt it as it is, define the pool with "
                    f"<volume_group>{pool.vg_name}</volume_group> and no <physical_volume>; "
                    f"for a new volume group, name another one in <volume_group>")
            # A shared VG's first PVs are made by vgcreate --shared itself: a
            # separate pvcreate needs LVM's global lock, which no lockspace
            # holds until the first shared VG exists (lvmlockd: "Global lock
            # failed: check that global lockspace is started").
            implicit = bool(pool.definition.lock_type) and not vg_exists
            for device in new_devices:
                if device not in pv_vgs:
                    if not implicit:
                        await self.lvm.pvcreate(device)
                    created_pvs.append(device)  # undone below if vgcreate fails
            if not vg_exists:
                if not new_devices:
                    raise InvalidArgument(f"pool {pool.name!r} lists no physical volume and "
                                          f"volume group {pool.vg_name!r} does not exist")
                record.vg_created = True
                self._save_record(pool.uuid, record)
                await self.lvm.vgcreate(pool.vg_name, new_devices, pool.name, pool.uuid,
                                        shared=bool(pool.definition.lock_type),
                                        host_id=self.settings.host_id)
                created_vg = True
            elif new_devices:
                await self.lvm.vgextend(pool.vg_name, new_devices)
                extended = new_devices
            if pool.definition.volumes or pool.definition.thin_pool:
                existing = set(await self.lvm.lv_tags(pool.vg_name))
                if await self._ensure_thin_pool(pool, existing):
                    created_lvs += 1
                for vdef in pool.definition.volumes:
                    if vdef.name in existing:
                        continue
                    if vdef.thin:
                        if not pool.definition.thin_pool:
                            raise self._no_thin_pool(pool)
                        await self.lvm.lvcreate_thin(pool.vg_name, THIN_POOL_LV, vdef.name,
                                                     vdef.capacity)
                    else:
                        await self.lvm.lvcreate(pool.vg_name, vdef.name, vdef.capacity)
                    created_lvs += 1
            if not (made or created_pvs or created_vg or extended or created_lvs):
                log.info("pool %s is already built: nothing to do", pool.name)
            if not keep_up and was == PoolState.INACTIVE:
                await self._bring_down(pool)
        except BaseException as exc:
            # Undo in reverse: what this build added to LVM, then its PVs and files.
            try:
                if created_vg:
                    # A shared VG's lockspace was started by vgcreate; vgremove stops it.
                    await self.lvm.vgremove(pool.vg_name)
                for device in extended:
                    await self.lvm.vgreduce(pool.vg_name, device)
            except StoragedError as undo:
                log.error("undoing build of %s: %s", pool.name, undo.message)
            await self._undo_build(pool, created_pvs, made,
                                   brought_up if was == PoolState.INACTIVE else [])
            self._set_state(pool, was, getattr(exc, "message", "") and f"build failed: {exc.message}")
            raise
        self._set_state(pool, was if was != PoolState.BUILDING else PoolState.INACTIVE, "")

    async def _create_source(self, pool: Pool, src: Source,
                             pv_vgs: dict[str, str]) -> tuple[str, bool]:
        """Bring a source up, creating what it needs first; (device, made now)."""
        backend = self._backend(src)
        if backend.creates and backend.exists(src):
            if self._made(pool, src):
                return await backend.up(src), False
            # An existing file is used only if it already is a PV of this pool's VG.
            device = await backend.up(src)
            owner = (await self.lvm.pv_vg_names()).get(device)
            if owner != pool.vg_name:
                if device not in pv_vgs:  # brought up just now: take it down again
                    await backend.down(src)
                raise AlreadyExists(f"{src.key} already exists and is not a physical volume of "
                                    f"{pool.vg_name!r}; remove it or choose another path")
            return device, False
        device = backend.device(src)
        # LVM may name the PV by any of the device's names: compare devices.
        owner = next((vg for pv, vg in pv_vgs.items() if vg and same_device(pv, device)),
                     None) if device else None
        if owner and owner != pool.vg_name:
            raise InvalidArgument(f"{src.key} carries an LVM2_member signature: it is a physical "
                                  f"volume of {self._vg_owner(owner)}")
        if backend.creates:
            # Recorded first: after a crash once the file exists, Delete (or the
            # recovery) still knows that this pool made it.
            self._note_created(pool, src, True)
        made = False
        try:
            device, made = await backend.create(src)
            return device, made
        finally:
            if backend.creates and not made and not backend.exists(src):
                self._note_created(pool, src, False)

    async def _undo_build(self, pool: Pool, created_pvs: list[str], made: list[Source],
                          brought_up: list[Source] = ()) -> None:
        for device in created_pvs:
            try:
                if await self._vg_of(device) is None:
                    await self.lvm.pvremove(device)
            except StoragedError as exc:
                log.warning("undoing build of %s: %s", pool.name, exc.message)
        for src in made:  # its file removed (and an NFS export unmounted)
            await self._quietly(pool, self._backend(src).destroy(src))
            self._note_created(pool, src, False)
        made_keys = {s.key for s in made}
        for src in brought_up:  # whatever this build attached or logged in to, and did not make
            if src.key not in made_keys:
                await self._quietly(pool, self._backend(src).down(src))

    async def _quietly(self, pool: Pool, step) -> None:
        try:
            await step
        except (StoragedError, OSError) as exc:
            log.warning("undoing build of %s: %s", pool.name, getattr(exc, "message", exc))
