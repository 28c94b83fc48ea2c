"""Thin pools: creating a pool's one thin pool, following its use, and
extending it before it fills.

Autoextend is the daemon's, not dmeventd's: each pool's threshold and step come
from its own XML (LVM's are global, or need a profile file per pool), the same
poll that reads the use decides and logs the extension and turns the pool
degraded when the volume group has no room left, and it works where dmeventd
is not running. LVM's own autoextend stays off (threshold 100, its default).
"""
from __future__ import annotations

import logging
from dataclasses import replace

from ..errors import AlreadyExists, InvalidArgument, NoSpace, NotSupported, StoragedError
from ..lvm.commands import OWN_TAG
from ..lvm.report import VgReport
from ..model.names import dm_name
from ..model.state import Pool
from ..model.thin import DEFAULT_PERCENT, DEFAULT_THRESHOLD, ThinPoolDef, check_autoextend

log = logging.getLogger(__name__)

THIN_POOL_LV = "thinpool"  # the name of the thin pool storaged makes in a VG


def _round_up(size: int, extent: int) -> int:
    return -(-size // extent) * extent if extent > 0 else size


class Thin:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    def _require_dm(self, what: str) -> None:
        if not self.activation:
            raise NotSupported(f"{what} needs device-mapper, which this host does not have "
                               f"(its kernel has no device-mapper driver or LVM's activation is "
                               f"off, so LVM runs metadata-only); nothing was changed")

    def _refuse_in_shared_pool(self, pool: Pool, what: str) -> None:
        if pool.definition.lock_type:
            raise NotSupported(f"pool {pool.name!r} is shared between hosts and has no {what}: "
                               f"LVM activates thin pools and snapshots on one host only, never "
                               f"shared, so no other host could take them over; nothing was changed")

    def _no_thin_pool(self, pool: Pool) -> NotSupported:
        return NotSupported(
            f"pool {pool.name!r} has no thin pool, which thin volumes live in: add one with "
            f"Pool.CreateThinPool (storagectl pool-thin-create {pool.name} SIZE) or a "
            f"<thin_pool size='50%'/> in the pool's XML")

    async def create_thin_pool(self, pool: Pool, size: int, threshold: int = DEFAULT_THRESHOLD,
                               percent: int = DEFAULT_PERCENT) -> None:
        self._refuse_in_shared_pool(pool, "a thin pool")
        if size <= 0:
            raise InvalidArgument("size: a thin pool needs a size above zero")
        check_autoextend(threshold, percent, "option")
        self._require_dm("a thin pool")
        async with pool.lock:
            self._require_running(pool)
            if pool.thin_pool:
                raise AlreadyExists(f"pool {pool.name!r} already has a thin pool "
                                    f"({pool.thin_pool}, {pool.thin_pool_size} bytes)")
            needed = _round_up(size, pool.extent_size)
            if needed > pool.available:
                raise NoSpace(f"pool {pool.name!r} has {pool.available} bytes available; "
                              f"a thin pool of {needed} bytes does not fit")
            tp = ThinPoolDef(size=needed, threshold=threshold, percent=percent)
            await self.lvm.lvcreate_thin_pool(pool.vg_name, THIN_POOL_LV, needed, None)
            pool.definition = replace(pool.definition, thin_pool=tp)
            self.store.save(pool.definition)
            await self._refresh([pool])

    async def _ensure_thin_pool(self, pool: Pool, existing: set[str]) -> bool:
        """At build: the <thin_pool> of the XML, unless the VG has it already."""
        tp = pool.definition.thin_pool
        if tp is None or THIN_POOL_LV in existing:
            return False
        self._require_dm(f"pool {pool.name!r}'s <thin_pool>")
        await self.lvm.lvcreate_thin_pool(pool.vg_name, THIN_POOL_LV, tp.size or None,
                                          tp.percent_vg or None)
        return True

    def _apply_thin_pool(self, pool: Pool, report: VgReport) -> None:
        """The thin pool as LVM's report shows it (the one storaged made first)."""
        pools = sorted(report.thin_pools, key=lambda t: (OWN_TAG not in t.tags, t.name != THIN_POOL_LV))
        if not pools:
            pool.thin_pool, pool.thin_pool_size = "", 0
            pool.thin_data_usage = pool.thin_metadata_usage = 0.0
            pool.thin_problem = ""
            return
        tp = pools[0]
        pool.thin_pool, pool.thin_pool_size = tp.name, tp.size
        pool.thin_data_usage, pool.thin_metadata_usage = tp.data_percent, tp.metadata_percent

    async def poll_thin_pools(self) -> None:
        """Every running thin pool's use from one dmsetup call; extend those
        past their threshold; degrade those that cannot grow."""
        pools = [p for p in self.pools.values() if p.active and p.thin_pool]
        if not pools or not self.activation:
            return
        status = await self.lvm.thin_pool_status()
        for pool in pools:
            name = dm_name(pool.vg_name, pool.thin_pool)
            use = status.get(name + "-tpool") or status.get(name)
            if use is None:
                continue
            pool.thin_data_usage, pool.thin_metadata_usage = use
            await self._autoextend(pool)
            self._publish(pool)

    async def _autoextend(self, pool: Pool) -> None:
        tp = pool.definition.thin_pool or ThinPoolDef()
        full = max(pool.thin_data_usage, pool.thin_metadata_usage)
        problem = ""
        if tp.threshold < 100 and full * 100 >= tp.threshold:
            data = _round_up(pool.thin_pool_size * tp.percent // 100, pool.extent_size) \
                if pool.thin_data_usage * 100 >= tp.threshold else 0
            # Metadata is small: grow it by the same share, at least one extent.
            meta = pool.extent_size if pool.thin_metadata_usage * 100 >= tp.threshold else 0
            if data + meta > pool.available:
                problem = (f"thin pool {pool.thin_pool} is {full:.0%} full (autoextend threshold "
                           f"{tp.threshold}%) and cannot grow: the volume group has "
                           f"{pool.available} bytes free, {data + meta} needed; add a physical "
                           f"volume or delete volumes before it fills")
            else:
                log.warning("pool %s: thin pool %s is %.0f%% full (threshold %d%%): extending "
                            "it by %d bytes of data and %d of metadata", pool.name, pool.thin_pool,
                            full * 100, tp.threshold, data, meta)
                # Without the pool's lock: a long Job holding it must not
                # keep the thin pool from growing (LVM locks the VG itself).
                try:
                    await self.lvm.lvextend_thin_pool(pool.vg_name, pool.thin_pool, data, meta)
                except StoragedError as exc:
                    problem = f"thin pool {pool.thin_pool} could not be extended: {exc.message}"
                await self._refresh([pool])
        elif full >= 0.95:  # autoextend off: say so before it is full
            problem = f"thin pool {pool.thin_pool} is {full:.0%} full and autoextend is off"
        if problem != pool.thin_problem:
            pool.thin_problem = problem
            if problem:
                log.error("pool %s: %s", pool.name, problem)
            self.request_refresh()  # the state follows (reconcile.py)
