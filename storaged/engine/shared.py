"""Pools shared by several hosts: one VG on storage every host sees, locked by
LVM's lvmlockd with sanlock (leases on the shared disk itself, no network
cluster stack). storaged adds no lock of its own: lvmlockd's VG lock
serialises metadata changes, its LV locks make activation exclusive (one
host) or shared (the migration window). docs/shared-pools.md says how.

The host's identity is its sanlock host_id: storaged.conf's `host_id` wins
(it is passed to LVM on the commands that join a lockspace), else LVM's own
`local/host_id` in lvmlocal.conf.
"""
from __future__ import annotations

import logging
import time

from ..errors import Busy, InvalidArgument, NotSupported, StoragedError
from ..lvm.lockd import LOCK_MODES, lv_key
from ..model.definitions import PoolDef, pool_to_xml
from ..model.names import check_vg_name
from ..model.state import Pool, PoolState

log = logging.getLogger(__name__)

LOCKSPACE_STARTING = ("joining the volume group's lockspace (after a crash of this host, "
                      "sanlock first waits for this host's old lease to expire: up to 8 x its "
                      "I/O timeout + 60 s)")
HOST_ID_HINT = ("set host_id = N (1-2000, different on every host sharing the storage) in the "
                "[daemon] section of /etc/storaged/storaged.conf, or local/host_id in "
                "/etc/lvm/lvmlocal.conf, and restart storaged")
LVMLOCKD_HINT = ("set use_lvmlockd = 1 in the global section of /etc/lvm/lvm.conf, install "
                 "lvm2-lockd and sanlock and start them (systemctl enable --now sanlock "
                 "lvmlockd), then restart storaged")
LEASE_RULE = ("if that host has died, its locks are free once its sanlock lease has expired, "
              "8 x the I/O timeout + 60 s after its last renewal (140 s with the default 10 s): "
              "try again then")


class Shared:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    @property
    def host_id(self) -> int:
        return self.settings.host_id or self.lvm.host_id

    def _require_shared_ready(self, pool_name: str) -> None:
        """What a shared pool needs of this host, checked before anything changes."""
        if not self.host_id:
            raise NotSupported(f"pool {pool_name!r} is shared between hosts and this host has "
                               f"no host_id: {HOST_ID_HINT}")
        if not self.lvm.use_lvmlockd:
            raise NotSupported(f"pool {pool_name!r} is shared between hosts, which needs "
                               f"lvmlockd: {LVMLOCKD_HINT}")
        # sanlock keeps its leases in a hidden LV ([lvmlock]) that must be active.
        self._require_dm(f"shared pool {pool_name!r}")

    def _check_host_ids(self) -> None:
        """Said once at start: two host_ids for one host would confuse an admin."""
        if self.settings.host_id and self.lvm.host_id and self.settings.host_id != self.lvm.host_id:
            log.warning("host_id %d in storaged.conf differs from local/host_id %d in LVM's "
                        "lvmlocal.conf: storaged uses %d; LVM commands run by hand use %d",
                        self.settings.host_id, self.lvm.host_id, self.settings.host_id,
                        self.lvm.host_id)

    async def _start_lockspace(self, pool: Pool) -> None:
        """Join the pool's lockspace; a problem leaves the pool degraded with
        the reason (and the retry loop tries again), never failed."""
        try:
            self._require_shared_ready(pool.name)
        except NotSupported as exc:
            pool.source_problems["lockspace"] = exc.message
            return
        self._set_state(pool, PoolState.DEGRADED, LOCKSPACE_STARTING)
        try:
            await self.lvm.lock_start(pool.vg_name, self.settings.host_id)
        except StoragedError as exc:
            log.warning("pool %s: %s", pool.name, exc.message)
            pool.source_problems["lockspace"] = exc.message

    async def _stop_lockspace(self, pool: Pool) -> None:
        """Deactivate the pool's LVs on this host (their locks go with them),
        then leave the lockspace, so that no lease outlives the pool here."""
        if not self.lvm.use_lvmlockd:
            return
        await self.lvm.vgchange_activate(pool.vg_name, False)
        try:
            await self.lvm.lock_stop(pool.vg_name)
            return
        except StoragedError as exc:
            if "must first be deactivated" not in exc.message:
                raise
            first = exc
        # lvmlockd still holds LV locks though vgchange -an passed (an unlock
        # it could not do): release each by its own lvchange -an, then again.
        space = (await self.lvm.lock_info()).get(pool.vg_name)
        held = space.lv_locks if space else {}
        names = {lv_key(uuid): name for uuid, name in (await self.lvm.lv_uuids(pool.vg_name)).items()}
        log.warning("pool %s: lvmlockd still holds %d lock(s) after deactivation: %s", pool.name,
                    len(held), ", ".join(f"{names.get(k, k)} ({m})" for k, m in held.items()))
        for key in held:
            if key in names:
                await self.lvm.lvchange_activate(pool.vg_name, names[key], False)
        try:
            await self.lvm.lock_stop(pool.vg_name)
        except StoragedError:
            raise type(first)(f"{first.message} (locks still held here: "
                              f"{', '.join(names.get(k, k) for k in held) or 'none listed'})") from None

    async def _refresh_locks(self, pools: list[Pool]) -> None:
        """The LV locks this host holds in each shared pool (one lvmlockctl call)."""
        shared = [p for p in pools if p.definition.lock_type and p.active]
        if not shared:
            return
        try:
            spaces = await self.lvm.lock_info()
        except StoragedError as exc:
            log.warning("reading lvmlockd's locks: %s", exc.message)
            spaces = {}
        for pool in shared:
            space = spaces.get(pool.vg_name)
            pool.lv_locks = dict(space.lv_locks) if space else {}

    def _lock_of(self, pool: Pool, lv_uuid: str, active: bool) -> str:
        """A Volume's Lock: what this host holds on it."""
        if not pool.definition.lock_type or not active:
            return "none"
        return LOCK_MODES.get(pool.lv_locks.get(lv_key(lv_uuid), ""), "exclusive")

    async def activate_volume(self, pool: Pool, name: str, shared: bool = False) -> None:
        """Activate a volume on this host: in a shared pool under an exclusive
        lock (no other host can), or a shared one (every host may: for the
        live-migration window)."""
        if not pool.definition.lock_type:
            if shared:
                raise InvalidArgument(f"option shared: pool {pool.name!r} is not shared between "
                                      f"hosts; its volumes are active on this host only")
            return await self.set_volume_active(pool, name, True)
        self.volume(pool, name)
        self._require_dm("activating a volume")
        want = "shared" if shared else "exclusive"
        async with pool.lock:
            self._require_running(pool)
            vol = self.volume(pool, name)
            if vol.lock == want:
                return
            try:
                if vol.lock != "none":
                    # LVM changes no lock's mode in place: release it, then take the other.
                    if vol.open:
                        raise Busy(f"volume {name!r} is open here with a {vol.lock} lock; close "
                                   f"it before activating it {want}")
                    await self.lvm.lvchange_activate(pool.vg_name, vol.name, False)
                await self.lvm.lvchange_activate(pool.vg_name, vol.name, True,
                                                 "s" if shared else "e")
            except Busy as exc:
                if "locked by other host" not in exc.message:
                    raise
                raise Busy(f"volume {name!r} is active on another host, so it cannot be "
                           f"activated {want} here ({exc.message}); "
                           f"{await self._leases_said(pool)}") from None
            finally:
                await self._refresh([pool])

    async def _leases_said(self, pool: Pool) -> str:
        """When the lock another host holds frees up, as far as sanlock tells."""
        try:
            leases = await self.lvm.host_leases(pool.vg_name)
        except StoragedError as exc:
            log.debug("sanlock host_status: %s", exc.message)
            return LEASE_RULE
        now = time.monotonic()
        silent = [lease for lease in leases if lease.host_id != self.host_id and lease.timestamp
                  and now - lease.last_live > 2 * lease.io_timeout]
        if not silent:
            return "every other host in the lockspace is renewing its lease: deactivate it there"
        return "; ".join(
            f"host {lease.host_id} has not renewed its sanlock lease for {now - lease.last_live:.0f} s: "
            + (f"its locks are free in about {lease.seconds_left(now):.0f} s"
               if lease.seconds_left(now) > 0 else "its lease has expired, try again")
            for lease in silent)

    async def import_pool(self, vg_name: str) -> Pool:
        """Serve a VG that storaged made (here or on another host) as the pool
        its tags name, with the same name and UUID: a shared pool's other
        hosts, or a pool undefined or moved with its disks."""
        check_vg_name(vg_name, "volume group")
        identity = await self.lvm.vg_identity(vg_name)
        if identity is None:
            raise InvalidArgument(
                f"volume group {vg_name!r} was not made by storaged (it has no "
                f"storaged.pool=/storaged.uuid= tags): to serve it, define a pool that adopts "
                f"it, <volume_group>{vg_name}</volume_group> with no <physical_volume>")
        name, uuid, lock_type = identity
        if lock_type and lock_type != "sanlock":
            raise NotSupported(f"volume group {vg_name!r} has lock type {lock_type!r}; storaged "
                               f"shares pools through sanlock only")
        if lock_type:
            self._require_shared_ready(name)
        definition = PoolDef(name=name, uuid=uuid,
                             volume_group=vg_name if vg_name != name else None,
                             lock_type=lock_type)
        pool = self.pools.get(uuid)
        if pool is None or (pool.name, pool.vg_name) != (name, vg_name):
            pool = await self.define(pool_to_xml(definition))  # AlreadyExists for another pool
        # else imported already (or by a call a crash cut short): made sure of, not refused
        log.info("pool %s imported from volume group %s%s", name, vg_name,
                 " (shared)" if lock_type else "")
        await self.set_autostart(pool, True)
        await self.start(pool)
        return pool
