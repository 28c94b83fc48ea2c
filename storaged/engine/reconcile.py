"""Reconciliation with LVM: coalesced refreshes, one report for all pools,
and applying what it says to each pool's state."""
from __future__ import annotations

import asyncio
import logging

from dataclasses import replace

from ..api import VOLUME_PROPERTIES, differences
from ..errors import NotFound, StoragedError
from ..lvm.label import fingerprints, metadata_text_of
from ..lvm.metadata import read_backup, seqno as backup_seqno, vg_report_from_text
from ..lvm.report import VgReport
from ..model.state import Pool, PoolState, Volume

log = logging.getLogger(__name__)

# A VG not visible yet after its sources came back: looked for this many
# times, this many seconds apart, before the pool is called failed.
VG_RETRIES, VG_RETRY_DELAY = 5, 0.5
BUSY_RETRY = 0.5  # seconds before a pool one of our calls holds is looked at again


class Reconcile:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    def request_refresh(self, full: bool = True) -> None:
        """Ask for a refresh soon; any number of requests during one refresh
        (a burst of events) cost one more refresh, not one each. Not `full`:
        only metadata changed (an LV created, renamed, resized, removed), which
        the VG's metadata text tells without running LVM."""
        self._refresh_wanted = True
        self._refresh_full = self._refresh_full or full
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.ensure_future(self._refresh_soon())

    async def _refresh_soon(self) -> None:
        while self._refresh_wanted:
            self._refresh_wanted = False
            await asyncio.sleep(0.005)  # let the rest of a burst arrive
            full, self._refresh_full = self._refresh_full, False
            try:
                if full:
                    await self.refresh()
                else:
                    await self._refresh_from_metadata([p for p in self.pools.values() if p.active])
            except StoragedError as exc:
                log.warning("refresh failed: %s", exc.message)

    async def _refresh_from_metadata(self, pools: list[Pool]) -> None:
        """The incremental refresh: each pool's VG metadata text (LVM's backup
        or the PV's copy) read and diffed against what the engine holds, no
        LVM command; a full report for the pools whose text cannot say it all
        (thin or snapshot LVs, PVs that came, went or are missing)."""
        async with self._refresh_lock:
            before = await fingerprints(self.pv_devices())
            texts = [(pool, await self._metadata_text(pool, on_disk=True)) for pool in pools]
        full, busy = [], False
        for pool, text in texts:
            seq = backup_seqno(text) if text else None
            if seq is not None and seq == pool.seqno and pool.state == PoolState.RUNNING:
                continue
            if pool.lock.locked():
                # A call of ours is changing this pool and learns its own change;
                # look again after it rather than parse the whole VG beside it.
                busy = True
                continue
            known = {v.uuid: (v.active, v.open) for v in pool.volumes.values()}
            report = vg_report_from_text(text, pool.pv_ids, known, self.activation) \
                if text and pool.state == PoolState.RUNNING else None
            if report is None or report.vg.uuid != pool.vg_uuid:
                full.append(pool)
                continue
            self.metadata_refreshes += 1
            self._apply(pool, report)
        self.pv_fingerprints.update(before)
        if busy:
            asyncio.get_running_loop().call_later(BUSY_RETRY, self.request_refresh, False)
        if full:
            await self._refresh(full)

    def check_sources(self) -> bool:
        """Recheck every active pool's sources without running a command;
        True if what is wrong with them changed (a refresh is due). A running
        pool with a source gone wrong is degraded at once, whatever the refresh
        then makes of it: LVM may not manage to report a VG one of whose PVs
        fails every read."""
        changed = False
        for pool in self.pools.values():
            if pool.active and self._recheck_sources(pool):
                changed = True
                if pool.state == PoolState.RUNNING and pool.source_problems:
                    pool.state = PoolState.DEGRADED
                    pool.reason = "; ".join(pool.source_problems.values())
                    self._publish(pool)
        return changed

    def local_source_devices(self) -> list[str]:
        """The devices of the active pools' local sources (plain devices, loop
        devices over files): the ones the poll reads to find I/O errors. Not
        iSCSI and NFS: a read there waits as long as the server is away, and
        their problem() already says when they are."""
        found = set()
        for pool in self.pools.values():
            if not pool.active:
                continue
            for src in pool.definition.sources:
                backend = self._backend(src)
                device = None if backend.retried else backend.device(src)
                if device:
                    found.add(device)
        return sorted(found)

    def _recheck_sources(self, pool: Pool) -> bool:
        problems = {k: v for k, v in pool.source_problems.items() if k in ("activation", "lockspace")}
        for src in pool.definition.sources:
            problem = self._backend(src).problem(src)
            device = None if problem or not self.io_errors else self._backend(src).device(src)
            if device in self.io_errors:
                problem = f"physical volume {device} fails to read: {self.io_errors[device]}"
                problems[src.key] = problem
                continue
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

    async def _metadata_text(self, pool: Pool, on_disk: bool = False) -> str | None:
        """The VG's metadata as LVM last committed it: its backup where LVM
        keeps backups (unless `on_disk`), else the copy in a PV's metadata
        area. Only the PV's copy is the truth: a VG removed outside leaves its
        last backup behind."""
        if self.lvm.backups_enabled and self.lvm.backup_dir and not on_disk:
            return read_backup(self.lvm.backup_dir, pool.vg_name)
        for device in pool.physical_volumes:
            text = await metadata_text_of(device)
            if text:
                return text
        return None

    async def metadata_known(self, devices: list[str]) -> bool:
        """Whether the metadata on these PVs (whose fingerprints changed) is what
        the engine already knows: then the change was its own, learnt already."""
        for device in devices:
            pool = next((p for p in self.pools.values()
                         if p.active and device in p.physical_volumes), None)
            text = await metadata_text_of(device) if pool else None
            if pool is None or text is None or backup_seqno(text) != pool.seqno:
                return False
        return True

    def pv_devices(self, shared_only: bool = False) -> list[str]:
        """The active pools' PVs (with shared_only, those of shared pools,
        whose other hosts' commits only the PV itself shows)."""
        return sorted({d for p in self.pools.values()
                       if p.active and (p.definition.lock_type or not shared_only)
                       for d in p.physical_volumes})

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
            reports = await self._report_of(pools, starting)
            self.refreshes += 1
            await self._refresh_locks(pools)
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

    async def _report_of(self, pools: list[Pool], starting: bool) -> dict[str, VgReport]:
        """The pools' VGs only: other VGs on the host (10,000 LVs of someone
        else's made each Refresh take seconds) are not read. Every VG when
        one is not where its name says (renamed, gone): a running pool
        follows its VG by UUID."""
        try:
            reports = await self.lvm.fullreport(sorted({p.vg_name for p in pools}))
        except NotFound:
            return await self.lvm.fullreport()
        uuids = {r.vg.uuid for r in reports.values()}
        if any(p.vg_uuid and not starting and p.vg_uuid not in uuids for p in pools):
            return await self.lvm.fullreport()
        return reports

    def _apply(self, pool: Pool, report: VgReport | None, starting: bool = False) -> None:
        if not starting and self._recheck_sources(pool):
            # The sources changed since the last look, maybe after this report
            # was taken: take another so that LVM's view catches up.
            self.request_refresh()
        if report is None:
            problems = list(pool.source_problems.values())
            if problems and not starting:
                # Its PVs are out of reach (a detached loop, a lost disk): the
                # volumes still exist, they are only unreachable for now.
                pool.state = PoolState.DEGRADED
                pool.reason = "; ".join(problems + [f"volume group {pool.vg_name!r} is not visible"])
                pool.vg_retries = 0
                self._publish(pool)
                return
            if pool.state == PoolState.DEGRADED and not starting and pool.vg_retries < VG_RETRIES:
                # Its sources just came back but LVM does not show the VG yet
                # (a device still settling): look again shortly before calling
                # it failed.
                pool.vg_retries += 1
                pool.reason = f"volume group {pool.vg_name!r} is not visible yet"
                asyncio.get_running_loop().call_later(VG_RETRY_DELAY, self.request_refresh)
                self._publish(pool)
                return
            for vol in list(pool.volumes.values()):
                del pool.volumes[vol.uuid]
                self.listener.volume_removed(pool, vol)
            pool.capacity = pool.allocation = pool.available = 0
            pool.virtual_allocation = pool.thin_pool_size = 0
            pool.thin_pool = ""
            pool.physical_volumes = []
            pool.seqno = 0
            # At start a missing VG is a degraded pool; a VG that vanished under a
            # running pool with all its sources up (an admin's vgremove) is a failure.
            pool.state = PoolState.DEGRADED if starting else PoolState.FAILED
            pool.reason = "; ".join([f"volume group {pool.vg_name!r} not found"] + problems)
            self._publish(pool)
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
        pool.pv_ids = {pv.uuid: pv.name for pv in report.pvs}
        missing = [pv.uuid for pv in report.pvs if pv.missing]
        problems = list(pool.source_problems.values())
        if missing:
            problems.append(f"physical volume(s) {', '.join(missing)} missing")
        self._apply_thin_pool(pool, report)
        if pool.thin_problem:
            problems.append(pool.thin_problem)
        pool.state = PoolState.DEGRADED if problems or vg.partial else PoolState.RUNNING
        pool.reason = "; ".join(problems)
        seen = set()
        for lv in report.lvs:
            seen.add(lv.uuid)
            old = pool.volumes.get(lv.uuid)
            lock = self._lock_of(pool, lv.uuid, lv.active)
            if old and (old.name, old.path, old.capacity, old.active, old.thin, old.snapshot,
                        old.origin, old.data_usage, old.lock) == \
                    (lv.name, lv.path, lv.size, lv.active, lv.thin, lv.snapshot, lv.origin_uuid,
                     lv.data_percent, lock):
                # Unchanged in every changeable Volume property (api.py; keep
                # this in step): the common case at 10,000 volumes.
                old.open = lv.open
                continue
            new = Volume(uuid=lv.uuid, pool_uuid=pool.uuid, name=lv.name, path=lv.path, capacity=lv.size,
                         active=lv.active, open=lv.open, thin=lv.thin, snapshot=lv.snapshot,
                         origin=lv.origin_uuid, data_usage=lv.data_percent, lock=lock)
            pool.volumes[lv.uuid] = new
            if old is None:
                self.listener.volume_added(pool, new)
            else:
                changed = differences(VOLUME_PROPERTIES, old, new)
                if changed:
                    self.listener.volume_changed(pool, new, changed)
        for uuid in [u for u in pool.volumes if u not in seen]:
            vol = pool.volumes.pop(uuid)
            self.listener.volume_removed(pool, vol)
        pool.virtual_allocation = sum(lv.size for lv in report.lvs if lv.thin)
        self._publish(pool)
