"""What the engine knows of each pool and volume now: plain state objects,
read by the property tables in storaged/api.py."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum

from .definitions import PoolDef


class PoolState(StrEnum):
    """A pool's State. `degraded` and `failed` come with a StateReason."""

    INACTIVE = "inactive"  # not started: its sources are down, its VG not activated
    BUILDING = "building"  # Build is making its files, PVs and VG
    RUNNING = "running"
    DEGRADED = "degraded"  # started, but a source is out of reach or a PV missing
    FAILED = "failed"  # started, but its VG is gone (an admin's vgremove)


@dataclass
class Volume:
    """A logical volume of a pool, as LVM's last report (or backup) said."""

    uuid: str
    pool_uuid: str
    name: str
    path: str
    capacity: int
    active: bool
    open: bool = False
    thin: bool = False  # a thin volume of the pool's thin pool
    origin: str = ""  # a snapshot's origin LV UUID ("" for none)
    data_usage: float = 0.0  # 0..1: a thin volume's share of its size written, a snapshot's CoW use
    snapshot: bool = False  # a copy-on-write snapshot of a thick volume
    # In a shared pool, the lvmlockd lock this host holds: exclusive, shared
    # or none (engine/shared.py); none in a pool of this host alone.
    lock: str = "none"


@dataclass
class Pool:
    """A defined pool: its definition, and what LVM last said of its VG.

    `reason` is the StateReason: why a pool is degraded or failed, in words a
    person can act on. `source_problems` holds what is wrong with each source
    now, found without running a command (the poll reads it); `bringup_errors`
    the words of the last failed attempt to bring a source up, which say more
    ("iscsiadm: Connection refused" against "not connected") and are shown
    instead while they apply.
    """

    definition: PoolDef
    autostart: bool = False
    state: PoolState = PoolState.INACTIVE
    reason: str = ""
    vg_uuid: str = ""
    capacity: int = 0
    allocation: int = 0
    available: int = 0
    extent_size: int = 0
    seqno: int = 0
    physical_volumes: list[str] = field(default_factory=list)
    pv_ids: dict[str, str] = field(default_factory=dict)  # PV UUID -> device, as last reported
    volumes: dict[str, Volume] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    source_problems: dict[str, str] = field(default_factory=dict)
    bringup_errors: dict[str, str] = field(default_factory=dict)
    vg_retries: int = 0
    # The pool's LVM thin pool (engine/thin.py): its LV name ("" for none),
    # size, and use (0..1) as last read from device-mapper.
    thin_pool: str = ""
    thin_pool_size: int = 0
    thin_data_usage: float = 0.0
    thin_metadata_usage: float = 0.0
    thin_problem: str = ""  # why the thin pool cannot go on (the pool is then degraded)
    # The sum of the thin volumes' sizes (above thin_pool_size when overcommitted),
    # kept as volumes come and go rather than summed at each change signal.
    virtual_allocation: int = 0
    host_id: int = 0  # this host's sanlock host_id, in a shared pool
    # A shared pool's LV locks held on this host: LV UUID (no dashes) -> ex/sh.
    lv_locks: dict[str, str] = field(default_factory=dict, repr=False)
    # The properties as last signalled (see Registry._publish).
    published: dict = field(default_factory=dict, repr=False)
    # Its volumes' object paths, sorted, and the volumes they are of (api.py).
    paths_cache: tuple = field(default=(None, []), repr=False)

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
        return self.state in (PoolState.RUNNING, PoolState.DEGRADED, PoolState.FAILED)

    def volume_named(self, name: str) -> Volume | None:
        for vol in self.volumes.values():
            if vol.name == name:
                return vol
        return None
