"""Notice changes made outside the daemon, cheaply, and ask the engine to refresh.

Event sources, from fastest to the floor:
- inotify on LVM's metadata backup directory: LVM rewrites `<backup_dir>/<vg>`
  after every change it commits (milliseconds after an admin's lvcreate);
- inotify on /dev/mapper where device-mapper exists: activation changes
  (`lvchange -ay/-an`) create and remove nodes there;
- a poll twice a second that runs no command: each running pool's sources
  (is the loop device still bound, the file still there, the disk present?) and
  a fingerprint of each PV's metadata area header, which changes with every
  metadata commit even where LVM keeps no backups (every poll for shared pools
  and where there are no backups; every 2 s where inotify sees the backups);
  and, every second, a 4 KiB read of each local source's device, which finds a
  disk turned bad under a running pool (I/O errors: the pool is degraded until
  it reads again).
Bursts are coalesced by the engine's refresh scheduler.
"""
from __future__ import annotations

import asyncio
import logging
import os

from ..lvm.label import fingerprints, read_errors
from ..system.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_MOVED_TO, Inotify

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
TRUTH_CHECK = 300.0  # seconds between full reports when nothing else asks for one
THIN_EVERY = 4  # polls between two reads of the thin pools' use (2 s: well within 5 s)
# Polls between two reads of each local device for I/O errors (1 s), and
# between two fingerprints of PVs whose changes inotify already reports (LVM
# writes a backup of every commit made on this host; 2 s, a floor under it).
# Shared pools' PVs, and all where LVM keeps no backups, every poll: there the
# PV is the only witness. 100 idle pools took 3.25 % of a core reading all of
# them every poll.
ERRORS_EVERY = 2
WATCHED_EVERY = 4


class Watcher:
    """Asks the engine to refresh when inotify or the poll sees a change."""

    def __init__(self, engine, interval: float = POLL_INTERVAL):
        self.engine = engine
        self.interval = interval
        self.inotify: Inotify | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.inotify = Inotify()
            backup_dir = self.engine.lvm.backup_dir
            if self.engine.lvm.backups_enabled and backup_dir:
                os.makedirs(backup_dir, mode=0o700, exist_ok=True)
                self.inotify.watch(backup_dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE)
            if self.engine.activation and os.path.isdir("/dev/mapper"):
                self.inotify.watch("/dev/mapper", IN_CREATE | IN_DELETE)
            loop.add_reader(self.inotify.fd, self._on_inotify)
        except OSError as exc:
            log.warning("no inotify (%s): changes are noticed by polling only", exc)
            self.inotify = None
        self._task = asyncio.ensure_future(self._poll())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()
        if self.inotify:
            asyncio.get_running_loop().remove_reader(self.inotify.fd)
            self.inotify.close()
            self.inotify = None

    def _on_inotify(self) -> None:
        events = self.inotify.read() if self.inotify else []
        backup_dir = self.engine.lvm.backup_dir
        # A backup the engine already knows (its own change, learnt from that
        # very file) needs no refresh; anything else does.
        # LVM writes a backup as a hidden temporary file and `<vg>.tmp`, then
        # renames it to `<vg>`: only the final name says anything.
        events = [(d, n) for d, n in events
                  if d != backup_dir or not (n.startswith(".") or n.endswith(".tmp"))]
        if any(d != backup_dir or self.engine.metadata_changed(name) for d, name in events):
            log.debug("inotify: %s", events)
            # A pool's own VG: its metadata text says what changed. Anything
            # else (activation in /dev/mapper, a VG renamed to a new name): a report.
            vgs = {p.vg_name for p in self.engine.pools.values() if p.active}
            self.engine.request_refresh(
                full=not all(d == backup_dir and name in vgs for d, name in events))

    async def _poll(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.interval)
            ticks += 1
            if ticks % round(TRUTH_CHECK / self.interval) == 0:
                # Every refresh from metadata text is checked by a full report now and then.
                self.engine.request_refresh()
            try:
                if ticks % THIN_EVERY == 0:
                    await self.engine.poll_thin_pools()
                errors = await read_errors(self.engine.local_source_devices()) \
                    if ticks % ERRORS_EVERY == 0 else self.engine.io_errors
                if errors != self.engine.io_errors:
                    for device in sorted(set(errors) | set(self.engine.io_errors)):
                        if device not in errors:
                            log.warning("%s reads again", device)
                        elif device not in self.engine.io_errors:
                            log.warning("%s fails to read: %s", device, errors[device])
                    self.engine.io_errors = errors
                if self.engine.check_sources():
                    self.engine.request_refresh()
                    continue
                known = self.engine.pv_fingerprints
                watched = self.inotify is not None and self.engine.lvm.backups_enabled
                now = await fingerprints(self.engine.pv_devices(
                    shared_only=watched and ticks % WATCHED_EVERY != 0))
                changed = [d for d, p in now.items() if known.get(d, p) != p]
                if changed:
                    if await self.engine.metadata_known(changed):
                        # The engine's own change, learnt from the metadata text.
                        known.update(now)
                    else:
                        log.debug("PV metadata changed: refresh")
                        self.engine.request_refresh(full=False)
            except asyncio.CancelledError:
                raise
            except Exception:  # the floor must keep running whatever happens
                log.exception("watch poll failed")
