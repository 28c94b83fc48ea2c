"""Start-up: load the definitions, recover, make the default pool, start the
autostart pools and those left running; and the retry of network sources."""
from __future__ import annotations

import asyncio
import logging
import os
import uuid

from ..errors import StoragedError
from ..model.definitions import FileSource, PoolDef, pool_to_xml
from ..model.state import Pool, PoolState
from ..system.host import boot_id, device_mapper_available

log = logging.getLogger(__name__)

NETWORK_LATER = "its iSCSI or NFS sources are brought up once storaged has started"
SHARED_LATER = "its lockspace is joined once storaged has started"


class Boot:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def boot(self) -> None:
        """The boot path: load definitions, make the default pool on a new host,
        and start every autostart pool (re-attach, vgscan, check, activate)."""
        await self.lvm.probe()
        self._check_host_ids()
        self.activation = self.lvm.activation_configured and device_mapper_available()
        for definition, autostart in self.store.load():
            pool = Pool(definition=definition, autostart=autostart)
            self.pools[pool.uuid] = pool
            self._add(pool)
        await self._recover()
        if not self.pools and self.settings.default_pool:
            await self._create_default_pool()
        # Autostart pools, and those a daemon that stopped or died left running:
        # a pool that is up is served as running, autostart or not.
        wanted = [p for p in self.pools.values()
                  if not p.active and (p.autostart or self._left_running(p))]
        # Local pools now, before READY=1: they are the host's storage that
        # guests wait for. Pools on iSCSI or NFS after it (start_network_pools),
        # so that a network that is late or a server that is down delays no unit
        # ordered after storaged; shared pools too, as joining a lockspace
        # takes seconds, and minutes after a crash.
        self._network_pools = [p for p in wanted if self._on_network(p) or p.definition.lock_type]
        if local := [p for p in wanted if p not in self._network_pools]:
            await self._start_pools(local)
        for pool in self._network_pools:
            self._set_state(pool, PoolState.DEGRADED,
                            NETWORK_LATER if self._on_network(pool) else SHARED_LATER)
        await self._recover_volumes()
        self._retry_task = asyncio.ensure_future(self._retry_sources_forever())

    async def start_network_pools(self) -> None:
        """The pools boot() left for after start-up: started now (the retry of
        network sources takes over for those still out of reach)."""
        pools, self._network_pools = self._network_pools, []
        if pools:
            log.info("starting %d pool(s) on iSCSI, NFS or shared storage", len(pools))
            await self._start_pools(pools)
            await self._recover_volumes()

    def _on_network(self, pool: Pool) -> bool:
        return any(self._backend(s).retried for s in pool.definition.sources)

    def close(self) -> None:
        if self._retry_task:
            self._retry_task.cancel()

    def _left_running(self, pool: Pool) -> bool:
        """Whether the pool is up though this daemon has not started it: its
        sources are still attached (a loop device, a session), or, having none
        to attach, its record says it was started in this boot and not stopped."""
        attached = [self._backend(s).device(s) is not None for s in pool.definition.sources
                    if self._backend(s).attaches]
        up = any(attached) if attached else \
            self._record(pool.uuid).started_in_boot == boot_id()
        if up and not pool.autostart:
            log.info("pool %s was left running: serving it again", pool.name)
        return up

    async def _create_default_pool(self) -> None:
        s = self.settings
        image = os.path.join(s.state_dir, "images", f"{s.default_pool_name}.img")
        definition = PoolDef(name=s.default_pool_name, uuid=str(uuid.uuid4()),
                             volume_group=s.default_pool_vg,
                             sources=[FileSource(path=image, size=s.default_pool_size)])
        log.info("no pools defined: creating the default pool (%d bytes at %s)",
                 s.default_pool_size, image)
        try:
            await self.create(pool_to_xml(definition))  # autostart, as every created pool
        except StoragedError as exc:
            log.error("cannot create the default pool: %s", exc.message)

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
            if pool.state != PoolState.DEGRADED or pool.lock.locked():
                continue
            backends = [(src, self._backend(src)) for src in pool.definition.sources]
            due = [(s, b) for s, b in backends if b.retried and b.problem(s)]
            # A lockspace not joined because lvmlockd or sanlock was not running
            # yet; a setting that is missing waits for a restart instead.
            lockspace = "lockspace" in pool.source_problems and self.lvm.use_lvmlockd \
                and self.host_id and self.activation
            if not due and not lockspace:
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
            log.info("pool %s: %s; starting it again", pool.name,
                     f"{len(due)} source(s) back" if due else "joining its lockspace")
            # Start is the retry for a degraded pool: vgscan, activate, refresh.
            await self._start_pools([pool])
