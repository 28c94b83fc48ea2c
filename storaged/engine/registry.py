"""The registry of pools: lookups, definitions, autostart, and telling the
listener what changed (each property signalled when it differs from what was
last signalled)."""
from __future__ import annotations

import logging

from typing import Protocol

from ..api import POOL_PROPERTIES, changeable
from ..errors import AlreadyExists, Busy, Degraded, Failed, NotFound
from ..model.definitions import PoolDef, Source, parse_pool, pool_to_xml, to_string, volume_element
from ..model.state import Pool, PoolState, Volume
from ..sources import backend_for

log = logging.getLogger(__name__)


class Listener(Protocol):
    """Told of every change, with the names of the properties that changed
    (storaged/api.py); the bus layer is one."""

    def pool_added(self, pool: Pool) -> None: ...
    def pool_removed(self, pool: Pool) -> None: ...
    def pool_changed(self, pool: Pool, changed: set[str]) -> None: ...
    def volume_added(self, pool: Pool, vol: Volume) -> None: ...
    def volume_removed(self, pool: Pool, vol: Volume) -> None: ...
    def volume_changed(self, pool: Pool, vol: Volume, changed: set[str]) -> None: ...


class NullListener:
    """A listener that hears nothing (an engine without a bus)."""

    def __getattr__(self, name):
        return lambda *args: None


class Registry:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    def _backend(self, src: Source):
        return backend_for(src, self.settings.run_dir)

    def pool_by_name(self, name: str) -> Pool:
        for pool in self.pools.values():
            if pool.name == name:
                return pool
        raise NotFound(f"no pool named {name!r}")

    def volume(self, pool: Pool, name: str) -> Volume:
        vol = pool.volume_named(name)
        if vol is None:
            if not pool.active:
                raise NotFound(f"pool {pool.name!r} is not running, so it has no volume {name!r}")
            raise NotFound(f"pool {pool.name!r} has no volume named {name!r}")
        return vol

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
        self._add(pool)
        return pool

    async def undefine(self, pool: Pool) -> None:
        async with pool.lock:
            if pool.state != PoolState.INACTIVE:
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
            pool.autostart = on
            self._publish(pool)

    def pool_xml(self, pool: Pool) -> str:
        return pool_to_xml(pool.definition)

    def volume_xml(self, vol: Volume) -> str:
        return to_string(volume_element(vol.name, vol.capacity, key=vol.uuid, path=vol.path))

    def _require_running(self, pool: Pool) -> None:
        if pool.state == PoolState.INACTIVE:
            raise Failed(f"pool {pool.name!r} is inactive; start it first")
        if pool.state == PoolState.BUILDING:
            raise Busy(f"pool {pool.name!r} is being built")
        if pool.state == PoolState.FAILED:
            raise Degraded(f"pool {pool.name!r} has failed ({pool.reason}); fix it and start it again")

    def _vg_owner(self, vg: str) -> str:
        """'pool NAME (volume group VG)', or 'volume group VG' when no pool has it."""
        pool = next((p for p in self.pools.values() if p.vg_name == vg), None)
        return f"pool {pool.name!r} (volume group {vg!r})" if pool else f"volume group {vg!r}"

    async def _vg_of(self, device: str) -> str | None:
        return (await self.lvm.pv_vg_names()).get(device) or None

    def _set_state(self, pool: Pool, state: PoolState, reason: str) -> None:
        pool.state, pool.reason = state, reason
        self._publish(pool)

    def _add(self, pool: Pool) -> None:
        pool.host_id = self.host_id if pool.definition.lock_type else 0
        pool.published = changeable(POOL_PROPERTIES, pool)
        self.listener.pool_added(pool)

    def _publish(self, pool: Pool) -> None:
        """Signal every property that differs from what was last signalled:
        compared with what clients were told, not with a snapshot taken
        somewhere along the way, no change can be left out."""
        after = changeable(POOL_PROPERTIES, pool)
        before, pool.published = pool.published, after
        changed = {k for k in after if after[k] != before.get(k)}
        if changed & {"State", "StateReason"}:
            log.info("pool %s: %s -> %s%s", pool.name, before.get("State"), pool.state,
                     f" ({pool.reason})" if pool.reason else "")
        if changed:
            self.listener.pool_changed(pool, changed)
