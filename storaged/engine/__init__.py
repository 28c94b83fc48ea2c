"""The pool engine: pools and their volumes, kept true to LVM. It knows nothing of D-Bus.

LVM is the single source of truth for which PVs and LVs exist: the engine keeps
only what the last LVM report (or metadata backup) said, keyed by UUID, and
tells a listener what changed. `Engine` is a facade over one file per concern:

  registry.py   the pools, lookups, definitions, autostart; change signals
  journal.py    each pool's record: intents, what it created, started this boot
  boot.py       start-up and the retry of network sources
  recovery.py   finishing or undoing what a crash interrupted
  build.py      Build and CreatePool (and their undo)
  lifecycle.py  Start, Stop, Delete
  volumes.py    allocate, deallocate, resize, wipe
  thin.py       thin pools: create, use, autoextend
  snapshots.py  snapshots, revert, rename, activation
  clone.py      clones (and the copy Job), Open
  physical.py   adding and removing physical volumes
  shared.py     pools shared by several hosts (lvmlockd, sanlock): locks, ImportPool
  reconcile.py  refreshes from LVM's reports
  disks.py      ResolveDisk
  jobs.py, store.py, watch.py  Jobs, files on disk, noticing outside changes
"""
from __future__ import annotations

import asyncio

from ..lvm import Lvm
from ..model.state import Pool
from .boot import Boot
from .build import Build
from .disks import Disks
from .jobs import Jobs
from .journal import Journal
from .lifecycle import Lifecycle
from .physical import PhysicalVolumes
from .reconcile import Reconcile
from .recovery import Recovery
from .registry import Listener, NullListener, Registry
from .settings import Settings
from .shared import Shared
from .snapshots import Snapshots
from .store import Store
from .thin import Thin
from .clone import Clones
from .volumes import Volumes

__all__ = ["Engine", "Listener", "Settings"]


class Engine(Registry, Journal, Boot, Recovery, Build, Lifecycle, Volumes, PhysicalVolumes,
             Reconcile, Disks, Thin, Snapshots, Clones, Shared):
    """Every operation on pools and volumes; each part is a mixin in its own
    file, sharing the attributes set here."""

    def __init__(self, settings: Settings, lvm: Lvm | None = None, listener: Listener | None = None):
        self.settings = settings
        self.lvm = lvm or Lvm(timeout=settings.command_timeout)
        self.listener: Listener = listener or NullListener()
        self.store = Store(settings.config_dir, settings.state_dir)
        self.jobs = Jobs()
        self.pools: dict[str, Pool] = {}
        self.activation = False  # LVM activation works here (device-mapper, activation = 1)
        self._defs_lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._refresh_wanted = False
        self._refresh_full = False
        self._refresh_task: asyncio.Task | None = None
        self.refreshes = 0  # how many full reports ran; benchmarks and tests read it
        self.metadata_refreshes = 0  # how many pools were refreshed from metadata text alone
        # PV metadata fingerprints as of the last refresh (see lvm/label.py);
        # the watcher's poll compares against them.
        self.pv_fingerprints: dict[str, bytes | None] = {}
        # Devices of local sources whose reads fail (the watcher's poll
        # fills it; lvm/label.py read_errors): a PV turned bad under a pool.
        self.io_errors: dict[str, str] = {}
        self._retry_task: asyncio.Task | None = None
        self._network_pools: list[Pool] = []  # started after READY=1 (boot.py)
