"""The pool engine: lifecycle of pools, their volumes, and reconciliation with LVM.

LVM is the single source of truth for which PVs and LVs exist: the engine keeps
only what the last LVM report said, keyed by UUID, and tells a listener what
changed. It knows nothing of D-Bus.
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field, replace
from typing import Protocol

from lxml import etree

from .errors import (AlreadyExists, Busy, Degraded, Failed, InvalidArgument, NoSpace,
                     NotFound, NotSupported, StoragedError)
from .jobs import Job, Jobs
from .lvm import Lvm, VgReport
from .lvm.metadata import find_lv, read_backup
from .lvm.metadata import seqno as backup_seqno
from .lvm.label import fingerprints
from .model.definitions import (FileSource, PoolDef, Source, _parse_document,
                                parse_pool, parse_source, parse_volume, pool_to_xml,
                                source_element, to_string, volume_element)
from .model.libvirt import libvirt_autostarted, pool_from_libvirt, resolve_domain
from .model.names import check_lv_name
from .model.sizes import check_size
from .sources import backend_for
from .sources import loop
from .store import Store
from .host import device_mapper_available

log = logging.getLogger(__name__)

INACTIVE, BUILDING, RUNNING, DEGRADED, FAILED = "inactive", "building", "running", "degraded", "failed"
VG_RETRIES, VG_RETRY_DELAY = 5, 0.5


@dataclass
class Volume:
    uuid: str
    name: str
    path: str
    capacity: int
    active: bool
    open: bool = False

    def differs(self, other: "Volume") -> set[str]:
        return {f for f in ("name", "path", "capacity", "active") if getattr(self, f) != getattr(other, f)}


@dataclass
class Pool:
    definition: PoolDef
    autostart: bool = False
    state: str = INACTIVE
    reason: str = ""
    vg_uuid: str = ""
    capacity: int = 0
    allocation: int = 0
    available: int = 0
    extent_size: int = 0
    seqno: int = 0
    physical_volumes: list[str] = field(default_factory=list)
    volumes: dict[str, Volume] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    source_problems: dict[str, str] = field(default_factory=dict)
    # Why the last bring-up of a source failed: says more than its problem()
    # ("not reachable: <iscsiadm's words>" against "not connected").
    bringup_errors: dict[str, str] = field(default_factory=dict)
    vg_retries: int = 0

    @property
    def uuid(self) -> str:
        return self.definition.uuid

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def vg_name(self) -> str:
        return self.definition.vg_name

    @property
    def active(self) -> bool:
        return self.state in (RUNNING, DEGRADED, FAILED)

    def volume_named(self, name: str) -> Volume | None:
        for vol in self.volumes.values():
            if vol.name == name:
                return vol
        return None

    def _props(self) -> dict:
        return {"state": self.state, "reason": self.reason, "capacity": self.capacity,
                "allocation": self.allocation, "available": self.available,
                "physical_volumes": list(self.physical_volumes), "autostart": self.autostart,
                "volume_group": self.vg_name, "name": self.name,
                # One "volumes" change per refresh, however many volumes came or went.
                "volumes": frozenset(self.volumes)}


class Listener(Protocol):
    def pool_added(self, pool: Pool) -> None: ...
    def pool_removed(self, pool: Pool) -> None: ...
    def pool_changed(self, pool: Pool, changed: set[str]) -> None: ...
    def volume_added(self, pool: Pool, vol: Volume) -> None: ...
    def volume_removed(self, pool: Pool, vol: Volume) -> None: ...
    def volume_changed(self, pool: Pool, vol: Volume, changed: set[str]) -> None: ...


class NullListener:
    def __getattr__(self, name):
        return lambda *args: None


@dataclass
class Settings:
    config_dir: str = "/etc/storaged"
    state_dir: str = "/var/lib/storaged"
    run_dir: str = "/run/storaged"
    default_pool: bool = True
    default_pool_size: int = 10 * 1024**3
    default_pool_name: str = "default"
    default_pool_vg: str = "vg_default"
    command_timeout: float = 120.0  # seconds an LVM command may take before it is killed
    # Seconds between retries of network sources (iSCSI, NFS) out of reach.
    source_retry_interval: float = 10.0
    libvirt_config_dir: str = "/etc/libvirt"  # where ImportLibvirtPool looks for autostart links


class Engine:
    def __init__(self, settings: Settings, lvm: Lvm | None = None, listener: Listener | None = None):
        self.settings = settings
        self.lvm = lvm or Lvm()
        self.listener: Listener = listener or NullListener()
        self.store = Store(settings.config_dir, settings.state_dir)
        self.jobs = Jobs()
        self.pools: dict[str, Pool] = {}
        self.activation = False
        self._defs_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._refresh_wanted = False
        self._refresh_task: asyncio.Task | None = None
        self.refreshes = 0  # how many refreshes ran; benchmarks and tests read it
        # PV metadata fingerprints as of the last refresh (see lvm/label.py);
        # the watcher's poll compares against them.
        self.pv_fingerprints: dict[str, bytes | None] = {}
        self._retry_task: asyncio.Task | None = None

    def _backend(self, src: Source):
        return backend_for(src, self.settings.run_dir)

    # ------------------------------------------------------------ lookup

    def pool_by_name(self, name: str) -> Pool:
        for pool in self.pools.values():
            if pool.name == name:
                return pool
        raise NotFound(f"no pool named {name!r}")

    def pool_by_uuid(self, uuid: str) -> Pool:
        try:
            return self.pools[uuid]
        except KeyError:
            raise NotFound(f"no pool with UUID {uuid}") from None

    def volume(self, pool: Pool, name: str) -> Volume:
        vol = pool.volume_named(name)
        if vol is None:
            if not pool.active:
                raise NotFound(f"pool {pool.name!r} is not running, so it has no volume {name!r}")
            raise NotFound(f"pool {pool.name!r} has no volume named {name!r}")
        return vol

    # ------------------------------------------------------------ start-up

    async def boot(self) -> None:
        """The boot path: load definitions, make the default pool on a new host,
        and start every autostart pool (re-attach, vgscan, check, activate)."""
        await self.lvm.probe()
        self.activation = await self.lvm.activation_enabled() and device_mapper_available()
        for definition, autostart in self.store.load():
            pool = Pool(definition=definition, autostart=autostart)
            self.pools[pool.uuid] = pool
            self.listener.pool_added(pool)
        await self._recover()
        if not self.pools and self.settings.default_pool:
            await self._create_default_pool()
        autostart = [p for p in self.pools.values() if p.autostart and not p.active]
        if autostart:
            await self._start_pools(autostart)
        self._retry_task = asyncio.ensure_future(self._retry_sources_forever())

    def close(self) -> None:
        if self._retry_task:
            self._retry_task.cancel()

    async def _retry_sources_forever(self) -> None:
        """A network PV not reachable at boot (a late network, a target started
        after us) or lost later is brought up again by itself: every few
        seconds, each degraded pool's retried sources that are out of reach."""
        while True:
            await asyncio.sleep(self.settings.source_retry_interval)
            try:
                await self.retry_sources()
            except StoragedError as exc:
                log.warning("retrying sources: %s", exc.message)

    async def retry_sources(self) -> None:
        for pool in list(self.pools.values()):
            if pool.state != DEGRADED or pool.lock.locked():
                continue
            backends = [(src, self._backend(src)) for src in pool.definition.sources]
            due = [(s, b) for s, b in backends if b.retried and b.problem(s)]
            if not due:
                continue
            try:
                for src, backend in due:
                    await backend.up(src)
                    pool.bringup_errors.pop(src.key, None)
            except StoragedError as exc:
                if pool.bringup_errors.get(src.key) != exc.message:
                    # Logged and shown when the reason changes, not every retry.
                    log.warning("pool %s: still out of reach: %s", pool.name, exc.message)
                    pool.bringup_errors[src.key] = exc.message
                    self.request_refresh()
                continue
            log.info("pool %s: %d source(s) back; starting it again", pool.name, len(due))
            # Start is the retry for a degraded pool: vgscan, activate, refresh.
            await self._start_pools([pool])

    async def _create_default_pool(self) -> None:
        s = self.settings
        image = os.path.join(s.state_dir, "images", f"{s.default_pool_name}.img")
        definition = PoolDef(name=s.default_pool_name, uuid=_new_uuid(),
                             volume_group=s.default_pool_vg,
                             sources=[FileSource(path=image, size=s.default_pool_size)])
        log.info("no pools defined: creating the default pool (%d bytes at %s)",
                 s.default_pool_size, image)
        try:
            await self.create(pool_to_xml(definition))
        except StoragedError as exc:
            log.error("cannot create the default pool: %s", exc.message)

    # ------------------------------------------------------------ definitions

    async def define(self, xml: str) -> Pool:
        definition = parse_pool(xml)
        async with self._defs_lock:
            return self._define(definition)

    def _define(self, definition: PoolDef) -> Pool:
        for other in self.pools.values():
            if other.name == definition.name:
                raise AlreadyExists(f"a pool named {definition.name!r} is already defined")
            if other.uuid == definition.uuid:
                raise AlreadyExists(f"pool {other.name!r} already has UUID {definition.uuid}")
            if other.vg_name == definition.vg_name:
                raise AlreadyExists(f"pool {other.name!r} already uses volume group {definition.vg_name!r}")
            mine = {s.key for s in definition.sources}
            shared = mine & {s.key for s in other.definition.sources}
            if shared:
                raise AlreadyExists(f"pool {other.name!r} already uses {sorted(shared)[0]}")
        self.store.save(definition)
        pool = Pool(definition=definition)
        self.pools[pool.uuid] = pool
        self.listener.pool_added(pool)
        return pool

    async def create(self, xml: str, force: bool = False) -> Pool:
        """Define, build and start; a failure leaves nothing behind."""
        definition = parse_pool(xml)
        async with self._defs_lock:
            # Intent first: after a crash at any later step the next start rolls
            # this CreatePool back (see _recover).
            self._set_intent(definition.uuid, {"op": "create"})
            try:
                pool = self._define(definition)
            except BaseException:
                self._set_intent(definition.uuid, None)
                raise
        try:
            async with pool.lock:
                await self._build(pool, force=force, keep_up=True)
                await self._start_pools([pool], locked=True)
            if definition.autostart:  # a created pool is the host's storage: back at every boot
                await self.set_autostart(pool, True)
        except BaseException:
            async with self._defs_lock:
                self._forget(pool)
            self._set_intent(pool.uuid, None)
            raise
        self._set_intent(pool.uuid, None)
        return pool

    # ------------------------------------------------------------ crash safety

    def _set_intent(self, uuid: str, intent: dict | None) -> None:
        """Record (or clear) a multi-step operation in the pool's record,
        atomically, before it touches storage."""
        record = self.store.record(uuid)
        if intent is None:
            if "intent" not in record:
                return
            record.pop("intent")
            if not record.get("created_files") and len(record) == 1:
                self.store.remove_record(uuid)
                return
        else:
            record["intent"] = intent
        self.store.save_record(uuid, record)

    async def _recover(self) -> None:
        """The start after a crash: finish or undo what was under way."""
        for uuid, record in self.store.records():
            intent = record.get("intent")
            if not intent:
                continue
            pool = self.pools.get(uuid)
            log.warning("recovering from an interrupted %s of pool %s", intent["op"],
                        pool.name if pool else uuid)
            try:
                if intent["op"] == "create":
                    # Roll back: as if CreatePool had never been called.
                    if pool:
                        await self._delete_storage(pool, remove_vg=record.get("vg_created", False))
                        self._forget(pool)
                    else:
                        for path in record.get("created_files", []):
                            await self._backend(FileSource(path=path)).destroy(FileSource(path=path))
                    self.store.remove_record(uuid)
                elif intent["op"] == "delete" and pool:
                    await self._delete_storage(pool)  # roll forward
                    self.store.remove_record(uuid)
                elif intent["op"] == "add_pv" and pool:
                    await self._undo_add_pv(pool, parse_source(intent["source"]))
                elif intent["op"] == "remove_pv" and pool:
                    await self._finish_remove_pv(pool, intent["key"])
                else:
                    self._set_intent(uuid, None)
            except StoragedError as exc:
                log.error("recovery of %s failed: %s; it is retried at the next start",
                          pool.name if pool else uuid, exc.message)

    async def undefine(self, pool: Pool) -> None:
        async with pool.lock:
            if pool.state != INACTIVE:
                raise Busy(f"pool {pool.name!r} is {pool.state}; stop it before undefining it")
            async with self._defs_lock:
                self._forget(pool)

    def _forget(self, pool: Pool) -> None:
        self.store.remove(pool.name)
        if self.pools.pop(pool.uuid, None) is not None:
            self.listener.pool_removed(pool)

    async def set_autostart(self, pool: Pool, on: bool) -> None:
        async with pool.lock:
            self.store.set_autostart(pool.name, on)
            if pool.autostart != on:
                pool.autostart = on
                self.listener.pool_changed(pool, {"autostart"})

    def pool_xml(self, pool: Pool) -> str:
        return pool_to_xml(pool.definition)

    # ------------------------------------------------------------ build

    async def build(self, pool: Pool, force: bool = False) -> None:
        async with pool.lock:
            await self._build(pool, force=force, keep_up=pool.active)

    async def _build(self, pool: Pool, *, force: bool, keep_up: bool) -> None:
        was = pool.state
        self._set_state(pool, BUILDING, "")
        record = self.store.record(pool.uuid)
        created_files: list[str] = []
        created_pvs: list[str] = []
        created_sources: list[Source] = []  # other sources whose create() made a file (NFS)
        brought_up: list[Source] = []
        created_vg, extended = False, []
        try:
            pv_vgs = await self.lvm.pv_vg_names()
            devices = []
            for src in pool.definition.sources:
                device, made = await self._create_source(pool, src, record, pv_vgs, force)
                brought_up.append(src)
                if made and isinstance(src, FileSource):
                    created_files.append(src.path)
                elif made:
                    created_sources.append(src)
                devices.append(device)
            if created_files:
                pv_vgs = await self.lvm.pv_vg_names()
            vg_exists = any(vg == pool.vg_name for vg in pv_vgs.values())
            new_devices = []
            for device in devices:
                owner = pv_vgs.get(device)
                if owner == pool.vg_name:
                    continue
                if owner:
                    raise AlreadyExists(f"{device} is a physical volume of volume group "
                                        f"{owner!r}, not of {pool.vg_name!r}")
                if owner is None:
                    await self.lvm.pvcreate(device, force=force)
                    created_pvs.append(device)
                new_devices.append(device)
            if not vg_exists:
                if not new_devices:
                    raise InvalidArgument(f"pool {pool.name!r} lists no physical volume and "
                                          f"volume group {pool.vg_name!r} does not exist")
                record["vg_created"] = True
                self.store.save_record(pool.uuid, record)
                await self.lvm.vgcreate(pool.vg_name, new_devices)
                created_vg = True
            elif new_devices:
                await self.lvm.vgextend(pool.vg_name, new_devices)
                extended = new_devices
            if pool.definition.volumes:
                reports = await self.lvm.fullreport()
                existing = {lv.name for lv in reports[pool.vg_name].lvs} if pool.vg_name in reports else set()
                for vdef in pool.definition.volumes:
                    if vdef.name not in existing:
                        await self.lvm.lvcreate(pool.vg_name, vdef.name, vdef.capacity)
            if not keep_up and was == INACTIVE:
                await self._bring_down(pool)
        except BaseException as exc:
            # Undo in reverse: what this build added to LVM, then its PVs and files.
            try:
                if created_vg:
                    await self.lvm.vgremove(pool.vg_name)
                for device in extended:
                    await self.lvm.vgreduce(pool.vg_name, device)
            except StoragedError as undo:
                log.error("undoing build of %s: %s", pool.name, undo.message)
            await self._undo_build(pool, created_pvs, created_files, record, created_sources,
                                   brought_up if was == INACTIVE else [])
            self._set_state(pool, was, getattr(exc, "message", "") and f"build failed: {exc.message}")
            raise
        self._set_state(pool, was if was != BUILDING else INACTIVE, "")

    async def _create_source(self, pool: Pool, src: Source, record: dict,
                             pv_vgs: dict[str, str], force: bool) -> tuple[str, bool]:
        backend = self._backend(src)
        if isinstance(src, FileSource) and os.path.lexists(src.path):
            if src.path in record["created_files"]:
                return await backend.up(src), False
            # An existing file is used only if it already is a PV of this pool's VG.
            device = await backend.up(src)
            owner = (await self.lvm.pv_vg_names()).get(device)
            if owner != pool.vg_name:
                if not loop.bound_to(src.path) or device not in pv_vgs:
                    await backend.down(src)
                raise AlreadyExists(f"{src.path} already exists and is not a physical volume of "
                                    f"{pool.vg_name!r}; remove it or choose another path")
            return device, False
        if isinstance(src, FileSource):
            # Record the intent first: a crash after creating the file still lets
            # Delete know that this pool owns it.
            record["created_files"] = sorted(set(record["created_files"]) | {src.path})
            self.store.save_record(pool.uuid, record)
        try:
            return await backend.create(src, force=force)
        except BaseException:
            if isinstance(src, FileSource) and not os.path.lexists(src.path):
                record["created_files"].remove(src.path)
                self.store.save_record(pool.uuid, record)
            raise

    async def _undo_build(self, pool: Pool, created_pvs: list[str], created_files: list[str],
                          record: dict, created_sources: list[Source] = (),
                          brought_up: list[Source] = ()) -> None:
        for device in created_pvs:
            try:
                if await self._vg_of(device) is None:
                    await self.lvm.pvremove(device)
            except StoragedError as exc:
                log.warning("undoing build of %s: %s", pool.name, exc.message)
        for path in created_files:
            try:
                await self._backend(FileSource(path=path)).destroy(FileSource(path=path))
            except (StoragedError, OSError) as exc:
                log.warning("undoing build of %s: cannot remove %s: %s", pool.name, path, exc)
            if path in record["created_files"]:
                record["created_files"].remove(path)
        self.store.save_record(pool.uuid, record)
        for src in created_sources:  # an NFS file: removed, and its export unmounted
            await self._quietly(pool, self._backend(src).destroy(src))
        for src in brought_up:  # an iSCSI session: logged out
            if not isinstance(src, FileSource) and src not in created_sources:
                await self._quietly(pool, self._backend(src).down(src))

    async def _quietly(self, pool: Pool, step) -> None:
        try:
            await step
        except (StoragedError, OSError) as exc:
            log.warning("undoing build of %s: %s", pool.name, getattr(exc, "message", exc))

    async def _vg_of(self, device: str) -> str | None:
        return (await self.lvm.pv_vg_names()).get(device) or None

    # ------------------------------------------------------------ start / stop

    async def start(self, pool: Pool) -> None:
        await self._start_pools([pool])

    async def _start_pools(self, pools: list[Pool], locked: bool = False) -> None:
        """Bring sources up, one vgscan, activate each VG, one report for all."""
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
            pools = [p for p in pools if p.state != RUNNING]
            for pool in pools:
                await bring_up(pool)
            if pools:
                await self.lvm.vgscan()
            for pool in pools:
                try:
                    await self.lvm.vgchange_activate(pool.vg_name, True)
                except NotFound:
                    pass  # reported by the refresh below
                except StoragedError as exc:
                    pool.source_problems.setdefault("activation", exc.message)
                pool.state = RUNNING
            await self._refresh(pools, starting=True)
        finally:
            for pool in held:
                pool.lock.release()

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

    async def _bring_down(self, pool: Pool) -> None:
        try:
            await self.lvm.vgchange_activate(pool.vg_name, False)
        except NotFound:
            pass
        for src in reversed(pool.definition.sources):
            await self._backend(src).down(src)

    def _deactivate(self, pool: Pool) -> None:
        for vol in list(pool.volumes.values()):
            del pool.volumes[vol.uuid]
            self.listener.volume_removed(pool, vol)
        before = pool._props()
        pool.state, pool.reason = INACTIVE, ""
        pool.capacity = pool.allocation = pool.available = 0
        pool.physical_volumes = []
        pool.seqno = 0
        pool.vg_uuid = ""
        self._changed(pool, before)

    async def delete(self, pool: Pool) -> None:
        """Remove the VG, its PV labels and the files this pool created."""
        async with pool.lock:
            if pool.state != INACTIVE:
                raise Busy(f"pool {pool.name!r} is {pool.state}; stop it before deleting it")
            if not pool.definition.sources and not self.store.record(pool.uuid).get("vg_created"):
                raise NotSupported(f"pool {pool.name!r} adopted volume group {pool.vg_name!r} and "
                                   f"did not create it, so Delete does not destroy it; Undefine "
                                   f"forgets the pool (LVM's vgremove removes the VG)")
            self._set_intent(pool.uuid, {"op": "delete"})
            await self._delete_storage(pool)
            self.store.remove_record(pool.uuid)

    async def _delete_storage(self, pool: Pool, remove_vg: bool = True) -> None:
        """Remove the VG (if asked), the PV labels on this pool's sources and the
        files it created; bring the sources down. Safe to repeat."""
        devices = []
        for src in pool.definition.sources:
            try:
                if self._backend(src).device(src) or not isinstance(src, FileSource) \
                        or os.path.lexists(src.path):
                    devices.append(await self._backend(src).up(src))
            except (Degraded, NotSupported, Failed):
                pass
        try:
            if remove_vg:
                try:
                    await self.lvm.vgremove(pool.vg_name)
                except NotFound:
                    pass
            pv_vgs = await self.lvm.pv_vg_names()
            for device in devices:
                if device in pv_vgs and (not pv_vgs[device] or
                                         (remove_vg and pv_vgs[device] == pool.vg_name)):
                    await self.lvm.pvremove(device)
        finally:
            for src in pool.definition.sources:
                await self._backend(src).down(src)
        for src in pool.definition.sources:
            if not isinstance(src, FileSource):
                await self._backend(src).destroy(src)  # an NFS file this pool created
        record = self.store.record(pool.uuid)
        for path in record["created_files"]:
            await self._backend(FileSource(path=path)).destroy(FileSource(path=path))

    # ------------------------------------------------------------ volumes

    def _require_running(self, pool: Pool) -> None:
        if pool.state == INACTIVE:
            raise Failed(f"pool {pool.name!r} is inactive; start it first")
        if pool.state == BUILDING:
            raise Busy(f"pool {pool.name!r} is being built")
        if pool.state == FAILED:
            raise Degraded(f"pool {pool.name!r} has failed ({pool.reason}); fix it and start it again")

    async def allocate_volume(self, pool: Pool, name: str, size: int) -> Volume:
        check_lv_name(name)
        check_size(size)
        async with pool.lock:
            self._require_running(pool)
            if pool.volume_named(name):
                raise AlreadyExists(f"pool {pool.name!r} already has a volume named {name!r}")
            needed = _round_up(size, pool.extent_size)
            if needed > pool.available:
                raise NoSpace(f"pool {pool.name!r} has {pool.available} bytes available; "
                              f"{name!r} needs {needed}")
            # LVM rounds up to whole extents anyway; asking for that exact size
            # also spares callers its "not a multiple of 512" refusal.
            await self.lvm.lvcreate(pool.vg_name, name, needed)
            vol = self._learn_new_volume(pool, name, needed)
            if vol is None:
                await self._refresh([pool])
                vol = pool.volume_named(name)
                if vol is None:
                    raise Failed(f"lvcreate reported success but {name!r} is not in {pool.vg_name!r}")
            return vol

    def _learn_new_volume(self, pool: Pool, name: str, size: int) -> Volume | None:
        """Fast path: take the new LV's UUID from LVM's metadata backup, saving a
        second LVM command (which costs as much as the lvcreate itself)."""
        if not (self.lvm.backups_enabled and self.lvm.backup_dir):
            return None
        text = read_backup(self.lvm.backup_dir, pool.vg_name)
        new = find_lv(text, name) if text else None
        if new is None or new.seqno <= pool.seqno or new.uuid in pool.volumes:
            return None
        vol = Volume(uuid=new.uuid, name=name, path=f"/dev/{pool.vg_name}/{name}",
                     capacity=size, active=self.activation)
        before = pool._props()
        pool.seqno = new.seqno
        pool.volumes[vol.uuid] = vol
        pool.allocation += size
        pool.available -= size
        self.listener.volume_added(pool, vol)
        self._changed(pool, before)
        return vol

    def _learn_removed_volume(self, pool: Pool, vol: Volume) -> bool:
        """Fast path for lvremove, as for lvcreate: LVM's backup shows a newer
        seqno without the LV, so no report is needed."""
        if not (self.lvm.backups_enabled and self.lvm.backup_dir):
            return False
        text = read_backup(self.lvm.backup_dir, pool.vg_name)
        seq = backup_seqno(text) if text else None
        if seq is None or seq <= pool.seqno or find_lv(text, vol.name) is not None \
                or vol.uuid not in pool.volumes:
            return False
        before = pool._props()
        pool.seqno = seq
        del pool.volumes[vol.uuid]
        pool.allocation -= vol.capacity
        pool.available += vol.capacity
        self.listener.volume_removed(pool, vol)
        self._changed(pool, before)
        return True

    async def create_volume(self, pool: Pool, xml: str) -> Volume:
        vdef = parse_volume(xml)
        return await self.allocate_volume(pool, vdef.name, vdef.capacity)

    async def deallocate_volume(self, pool: Pool, name: str) -> None:
        check_lv_name(name)
        async with pool.lock:
            self._require_running(pool)
            vol = self.volume(pool, name)
            await self.lvm.lvremove(pool.vg_name, vol.name)
            if not self._learn_removed_volume(pool, vol):
                await self._refresh([pool])

    # ------------------------------------------------------------ jobs on volumes

    def resize_volume(self, pool: Pool, name: str, size: int, shrink: bool, uid: int) -> Job:
        """Grow a volume; shrink it only when asked to (it destroys data)."""
        check_size(size)
        self._require_running(pool)
        vol = self.volume(pool, name)
        needed = _round_up(size, pool.extent_size)
        if needed == vol.capacity:
            raise InvalidArgument(f"volume {name!r} already has {vol.capacity} bytes")
        if needed < vol.capacity and not shrink:
            raise InvalidArgument(f"shrinking {name!r} from {vol.capacity} to {needed} bytes "
                                  f"destroys data; pass the option force=true to do it")
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
            await wipe_device(path, job)
        return self.jobs.start(f"wipe {pool.name}/{name}", uid, work)

    # ------------------------------------------------------------ physical volumes

    async def add_physical_volume(self, pool: Pool, xml: str, force: bool = False) -> None:
        src = parse_source(xml)
        async with pool.lock:
            self._require_running(pool)
            for other in self.pools.values():
                if src.key in {s.key for s in other.definition.sources}:
                    raise AlreadyExists(f"pool {other.name!r} already uses {src.key}")
            self._set_intent(pool.uuid, {"op": "add_pv", "source": to_string(source_element(src))})
            record = self.store.record(pool.uuid)
            pv_vgs = await self.lvm.pv_vg_names()
            try:
                device, made = await self._create_source(pool, src, record, pv_vgs, force)
            except BaseException:
                self._set_intent(pool.uuid, None)
                raise
            created_pv = False
            try:
                owner = (await self.lvm.pv_vg_names()).get(device)
                if owner and owner != pool.vg_name:
                    raise AlreadyExists(f"{device} is a physical volume of volume group {owner!r}")
                if owner is None:
                    await self.lvm.pvcreate(device, force=force)
                    created_pv = True
                if owner != pool.vg_name:
                    await self.lvm.vgextend(pool.vg_name, [device])
            except BaseException:
                await self._undo_build(pool, [device] if created_pv else [],
                                       [src.path] if made else [], record)
                if not made:
                    await self._backend(src).down(src)
                self._set_intent(pool.uuid, None)
                raise
            pool.definition = replace(pool.definition, sources=[*pool.definition.sources, src])
            self.store.save(pool.definition)
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

    async def _destroy_if_created(self, pool: Pool, src: Source) -> None:
        """Remove a file PV's file if this pool created it, and forget it."""
        record = self.store.record(pool.uuid)
        if isinstance(src, FileSource) and src.path in record["created_files"]:
            await self._backend(src).destroy(src)
            record["created_files"].remove(src.path)
            self.store.save_record(pool.uuid, record)

    async def _source_device(self, src: Source) -> str | None:
        """The source's device, attaching an existing file to look at it."""
        backend = self._backend(src)
        device = backend.device(src)
        if device is None and isinstance(src, FileSource) and os.path.lexists(src.path):
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
                self._set_intent(pool.uuid, {"op": "remove_pv", "key": src.key})
                if pv.used:
                    try:
                        await self._move_off(pool, device, job)
                    except BaseException:
                        self._set_intent(pool.uuid, None)
                        raise
                await self.lvm.vgreduce(pool.vg_name, device)
                await self._finish_remove_pv(pool, src.key)
                await self._refresh([pool])
        return self.jobs.start(f"remove {src.key} from {pool.name}", uid, work)

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
        as without activation, exits 0 having moved nothing."""
        try:
            await self.lvm.pvmove(device, job.set_progress)
            after = (await self.lvm.fullreport()).get(pool.vg_name)
            left = next((p.used for p in after.pvs if p.name == device), 0) if after else 0
            if left:
                raise Failed(f"pvmove {device} left {left} bytes on it"
                             + ("" if self.activation else
                                " (moving data needs device-mapper; LVM activation is off here)"))
        except BaseException:
            try:
                await asyncio.shield(self.lvm.pvmove_abort())
            except StoragedError as exc:
                log.error("pvmove --abort after a failed move off %s: %s", device, exc.message)
            await asyncio.shield(self._refresh([pool]))
            raise

    def volume_xml(self, vol: Volume) -> str:
        return to_string(volume_element(vol.name, vol.capacity, key=vol.uuid, path=vol.path))

    # ------------------------------------------------------------ refresh

    def request_refresh(self) -> None:
        """Ask for a refresh soon; any number of requests during one refresh
        (a burst of events) cost one more refresh, not one each."""
        self._refresh_wanted = True
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._refresh_soon())

    async def _refresh_soon(self) -> None:
        while self._refresh_wanted:
            self._refresh_wanted = False
            await asyncio.sleep(0.005)  # let the rest of a burst arrive
            try:
                await self.refresh()
            except StoragedError as exc:
                log.warning("refresh failed: %s", exc.message)

    def check_sources(self) -> bool:
        """Recheck every active pool's sources without running a command;
        True if what is wrong with them changed (a refresh is due)."""
        changed = False
        for pool in self.pools.values():
            if pool.active and self._recheck_sources(pool):
                changed = True
        return changed

    def _recheck_sources(self, pool: Pool) -> bool:
        problems = {k: v for k, v in pool.source_problems.items() if k == "activation"}
        for src in pool.definition.sources:
            problem = self._backend(src).problem(src)
            if problem:
                problems[src.key] = pool.bringup_errors.get(src.key, problem)
            else:
                pool.bringup_errors.pop(src.key, None)
        if problems == pool.source_problems:
            return False
        pool.source_problems = problems
        return True

    def metadata_changed(self, vg_name: str) -> bool:
        """Whether LVM's backup of `vg_name` shows a change this engine has not seen."""
        text = read_backup(self.lvm.backup_dir, vg_name) if self.lvm.backup_dir else None
        seq = backup_seqno(text) if text else None
        for pool in self.pools.values():
            if pool.active and pool.vg_name == vg_name:
                return seq is None or seq != pool.seqno
        return True

    def backups_current(self) -> bool:
        """Whether LVM's backups show nothing the engine has not seen (then a
        changed PV fingerprint is the engine's own change, already known)."""
        if not (self.lvm.backups_enabled and self.lvm.backup_dir):
            return False
        return not any(self.metadata_changed(p.vg_name) for p in self.pools.values() if p.active)

    def pv_devices(self) -> list[str]:
        return sorted({d for p in self.pools.values() if p.active for d in p.physical_volumes})

    async def refresh(self, pool: Pool | None = None) -> None:
        pools = [pool] if pool else list(self.pools.values())
        await self._refresh([p for p in pools if p.active])

    async def _refresh(self, pools: list[Pool], starting: bool = False) -> None:
        """One LVM report for all the given pools; apply what changed."""
        if not pools:
            return
        async with self._refresh_lock:
            # Fingerprints first: a change after them shows up at the next poll.
            before = await fingerprints(self.pv_devices())
            reports = await self.lvm.fullreport()
            self.refreshes += 1
        by_uuid = {r.vg.uuid: r for r in reports.values()}
        for pool in pools:
            if not pool.active and not starting:
                continue
            # A running pool follows its VG by UUID (an admin's vgrename);
            # at start the definition's name is what there is to go by.
            if pool.vg_uuid and not starting:
                report = by_uuid.get(pool.vg_uuid)
            else:
                report = reports.get(pool.vg_name)
            self._apply(pool, report, starting)
        new = [d for d in self.pv_devices() if d not in before]
        before.update(await fingerprints(new))
        self.pv_fingerprints = before

    def _apply(self, pool: Pool, report: VgReport | None, starting: bool = False) -> None:
        before = pool._props()
        if not starting and self._recheck_sources(pool):
            # The sources changed since the last look, maybe after this report
            # was taken: take another so that LVM's view catches up.
            self.request_refresh()
        if report is None:
            problems = list(pool.source_problems.values())
            if problems and not starting:
                # Its PVs are out of reach (a detached loop, a lost disk): the
                # volumes still exist, they are only unreachable for now.
                pool.state = DEGRADED
                pool.reason = "; ".join(problems + [f"volume group {pool.vg_name!r} is not visible"])
                pool.vg_retries = 0
                self._changed(pool, before)
                return
            if pool.state == DEGRADED and not starting and pool.vg_retries < VG_RETRIES:
                # Its sources just came back but LVM does not show the VG yet
                # (a device still settling): look again shortly before calling
                # it failed.
                pool.vg_retries += 1
                pool.reason = f"volume group {pool.vg_name!r} is not visible yet"
                asyncio.get_running_loop().call_later(VG_RETRY_DELAY, self.request_refresh)
                self._changed(pool, before)
                return
            for vol in list(pool.volumes.values()):
                del pool.volumes[vol.uuid]
                self.listener.volume_removed(pool, vol)
            pool.capacity = pool.allocation = pool.available = 0
            pool.physical_volumes = []
            pool.seqno = 0
            # At start a missing VG is a degraded pool; a VG that vanished under a
            # running pool with all its sources up (an admin's vgremove) is a failure.
            pool.state = DEGRADED if starting else FAILED
            pool.reason = "; ".join([f"volume group {pool.vg_name!r} not found"] + problems)
            self._changed(pool, before)
            return
        vg = report.vg
        pool.vg_retries = 0
        if vg.uuid == pool.vg_uuid and vg.seqno < pool.seqno:
            return  # an older report than what this pool already knows
        if vg.name != pool.vg_name:
            # An admin renamed the VG: follow it, and keep the definition true.
            log.info("pool %s: volume group %s was renamed to %s", pool.name, pool.vg_name, vg.name)
            pool.definition = replace(pool.definition, volume_group=vg.name)
            self.store.save(pool.definition)
        pool.vg_uuid, pool.seqno, pool.extent_size = vg.uuid, vg.seqno, vg.extent_size
        pool.capacity, pool.available, pool.allocation = vg.size, vg.free, vg.size - vg.free
        pool.physical_volumes = sorted(pv.name for pv in report.pvs if not pv.missing)
        missing = [pv.uuid for pv in report.pvs if pv.missing]
        problems = list(pool.source_problems.values())
        if missing:
            problems.append(f"physical volume(s) {', '.join(missing)} missing")
        pool.state = DEGRADED if problems or vg.partial else RUNNING
        pool.reason = "; ".join(problems)
        seen = set()
        for lv in report.lvs:
            seen.add(lv.uuid)
            new = Volume(uuid=lv.uuid, name=lv.name, path=lv.path, capacity=lv.size,
                         active=lv.active, open=lv.open)
            old = pool.volumes.get(lv.uuid)
            pool.volumes[lv.uuid] = new
            if old is None:
                self.listener.volume_added(pool, new)
            else:
                changed = new.differs(old)
                if changed:
                    self.listener.volume_changed(pool, new, changed)
        for uuid in [u for u in pool.volumes if u not in seen]:
            vol = pool.volumes.pop(uuid)
            self.listener.volume_removed(pool, vol)
        self._changed(pool, before)

    def _set_state(self, pool: Pool, state: str, reason: str) -> None:
        before = pool._props()
        pool.state, pool.reason = state, reason
        self._changed(pool, before)

    def _changed(self, pool: Pool, before: dict) -> None:
        after = pool._props()
        changed = {k for k in after if after[k] != before[k]}
        if changed & {"state", "reason"}:
            log.info("pool %s: %s -> %s%s", pool.name, before["state"], pool.state,
                     f" ({pool.reason})" if pool.reason else "")
        if changed:
            self.listener.pool_changed(pool, changed)

    # ------------------------------------------------------------ libvirt (model/libvirt.py)

    async def import_libvirt_pool(self, xml: str) -> Pool:
        """Adopt a libvirt logical pool's VG as it is, started; autostart as in libvirt."""
        definition, name = pool_from_libvirt(xml)
        vg = parse_pool(definition).vg_name
        if vg not in set((await self.lvm.pv_vg_names()).values()):
            raise NotFound(f"libvirt pool {name!r}: volume group {vg!r} does not exist on this host")
        pool = await self.define(definition)
        await self.start(pool)
        if libvirt_autostarted(self.settings.libvirt_config_dir, name):
            await self.set_autostart(pool, True)
        return pool

    def resolve_domain(self, xml: str) -> str:
        return resolve_domain(xml, self.resolve_disk)

    # ------------------------------------------------------------ disks

    def resolve_disk(self, xml: str) -> str:
        """<disk type='volume'><source volume='X' [pool='P']/> -> <disk type='block'><source dev=.../>"""
        root = _parse_document(xml, "disk XML")
        if root.tag != "disk":
            raise InvalidArgument(f"disk XML: the root element is <{root.tag}>, expected <disk>")
        if root.get("type") != "volume":
            raise InvalidArgument(f"disk XML: type is {root.get('type')!r}; only type='volume' "
                                  f"disks are resolved")
        sources = root.findall("source")
        if len(sources) != 1:
            raise InvalidArgument("disk XML: expected exactly one <source> element")
        source = sources[0]
        name = source.get("volume")
        if not name:
            raise InvalidArgument("disk XML: <source> has no volume attribute")
        pool_name = source.get("pool")
        if pool_name:
            vol = self.volume(self.pool_by_name(pool_name), name)
        else:
            found = [(p, p.volume_named(name)) for p in self.pools.values()]
            found = [(p, v) for p, v in found if v]
            if not found:
                raise NotFound(f"no running pool has a volume named {name!r}")
            if len(found) > 1:
                raise InvalidArgument(f"volume {name!r} is ambiguous: it is in pools "
                                      f"{', '.join(sorted(p.name for p, _ in found))}; "
                                      f"name the pool with pool='...'")
            vol = found[0][1]
        root.set("type", "block")
        for attr in ("volume", "pool"):
            source.attrib.pop(attr, None)
        source.set("dev", vol.path)
        return etree.tostring(root, encoding="unicode")


BLKZEROOUT = 0x127F  # _IO(0x12, 127)
WIPE_CHUNK = 64 * 1024 * 1024


async def wipe_device(path: str, job: Job) -> None:
    """Zero a block device chunk by chunk off the event loop, with progress;
    cancelling stops between chunks."""
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC)  # O_EXCL: refuse if in use
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        done = 0
        while done < size:
            length = min(WIPE_CHUNK, size - done)
            await loop.run_in_executor(None, _zero_range, fd, done, length)
            done += length
            job.set_progress(done / size)
    finally:
        os.close(fd)


def _zero_range(fd: int, start: int, length: int) -> None:
    import fcntl
    import struct
    try:
        fcntl.ioctl(fd, BLKZEROOUT, struct.pack("QQ", start, length))
    except OSError:
        zeros = bytes(1024 * 1024)
        for off in range(start, start + length, len(zeros)):
            os.pwrite(fd, zeros[:min(len(zeros), start + length - off)], off)
        os.fsync(fd)


def _round_up(size: int, extent: int) -> int:
    if extent <= 0:
        return size
    return -(-size // extent) * extent


def _new_uuid() -> str:
    import uuid
    return str(uuid.uuid4())
