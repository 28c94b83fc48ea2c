"""The D-Bus API's names, and every property of every object, declared once.

Plain data that imports nothing of the project's but its version: the engine
reads the tables to know which properties changed, the bus layer derives its
getters, PropertiesChanged and introspection from them, and the client
library and storagectl their attributes and columns. Adding a property to an
object is one line in its table (and its description in docs/api.md).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Callable

from . import __version__

BUS_NAME = "org.storaged.Storaged1"
ROOT_PATH = "/org/storaged/Storaged1"
MANAGER_PATH = f"{ROOT_PATH}/Manager"
JOBS_PATH = f"{ROOT_PATH}/jobs"
MANAGER_IFACE = "org.storaged.Storaged1.Manager"
POOL_IFACE = "org.storaged.Storaged1.Pool"
VOLUME_IFACE = "org.storaged.Storaged1.Volume"
JOB_IFACE = "org.storaged.Storaged1.Job"
ERROR_PREFIX = "org.storaged.Storaged1.Error"
# Every error a method answers is ERROR_PREFIX.<kind>, one of these.
ERROR_KINDS = ("InvalidArgument", "NotFound", "AlreadyExists", "Busy", "NoSpace",
               "NotAuthorized", "NotSupported", "Degraded", "Cancelled", "Failed")


def _key(uuid: str) -> str:
    # Object path elements allow [A-Za-z0-9_] only; LVM and RFC 4122 UUIDs use '-'.
    return uuid.replace("-", "_")


def pool_path(pool_uuid: str) -> str:
    return f"{ROOT_PATH}/pools/{_key(pool_uuid)}"


def volume_path(pool_uuid: str, lv_uuid: str) -> str:
    return f"{pool_path(pool_uuid)}/volumes/{_key(lv_uuid)}"


def job_path(job_id: int) -> str:
    return f"{JOBS_PATH}/{job_id}"


@dataclass(frozen=True)
class Property:
    """One D-Bus property: its name, its D-Bus type, how it is read from the
    engine's object, and what it means (for the docs and --help)."""

    name: str
    signature: str
    read: Callable[[Any], Any]
    doc: str
    fixed: bool = False  # set when the object appears, never changes (no PropertiesChanged)
    column: bool = False  # one of storagectl's list columns, in table order
    # What to compare to tell a change, when reading the value itself costs
    # more than that (a pool's list of volume paths at 10,000 volumes).
    watch: Callable[[Any], Any] | None = None

    def snapshot(self, obj: Any) -> Any:
        return (self.watch or self.read)(obj)


def changeable(table: tuple[Property, ...], obj: Any) -> dict[str, Any]:
    """What the changeable properties of `obj` are now, to compare with later."""
    return {p.name: p.snapshot(obj) for p in table if not p.fixed}


def differences(table: tuple[Property, ...], old: Any, new: Any) -> set[str]:
    """The names of the properties whose values differ between two objects."""
    return {p.name for p in table if not p.fixed and p.snapshot(old) != p.snapshot(new)}


def _volume_paths(pool) -> list[str]:
    """A pool's volume paths, sorted; changed only when its volumes changed,
    and then by what came and went (10,000 paths are read at every change of
    any of its properties, and one volume comes or goes at a time)."""
    key = frozenset(pool.volumes)
    old_key, paths = pool.paths_cache
    if old_key == key:
        return paths
    added, removed = (key - old_key, old_key - key) if old_key is not None else (key, ())
    if len(added) + len(removed) > 64:
        paths = sorted(volume_path(pool.uuid, u) for u in key)
    else:
        paths = list(paths)  # a new list: one already handed out stays as it was
        for u in removed:
            del paths[bisect.bisect_left(paths, volume_path(pool.uuid, u))]
        for u in added:
            bisect.insort(paths, volume_path(pool.uuid, u))
    pool.paths_cache = (key, paths)
    return paths


MANAGER_PROPERTIES = (
    Property("Version", "s", lambda engine: __version__, "storaged's version", fixed=True),
    Property("Pools", "ao", lambda engine: sorted(pool_path(u) for u in engine.pools),
             "every defined pool", watch=lambda engine: frozenset(engine.pools)),
)

POOL_PROPERTIES = (
    Property("Name", "s", lambda p: p.name, "the pool's name", column=False),
    Property("UUID", "s", lambda p: p.uuid, "the pool's UUID (its object path's last element)",
             fixed=True),
    Property("VolumeGroup", "s", lambda p: p.vg_name, "the LVM volume group it is"),
    Property("State", "s", lambda p: str(p.state),
             "inactive, building, running, degraded or failed", column=True),
    Property("StateReason", "s", lambda p: p.reason,
             "why the pool is degraded or failed (empty when running or inactive)"),
    Property("Autostart", "b", lambda p: p.autostart, "started when storaged starts", column=True),
    Property("Capacity", "t", lambda p: p.capacity, "the volume group's size in bytes", column=True),
    Property("Allocation", "t", lambda p: p.allocation, "bytes given to volumes", column=True),
    Property("Available", "t", lambda p: p.available, "bytes free for new volumes", column=True),
    Property("PhysicalVolumes", "as", lambda p: list(p.physical_volumes),
             "the volume group's physical volumes (devices)"),
    Property("Volumes", "ao", lambda p: _volume_paths(p), "the pool's volumes",
             watch=lambda p: frozenset(p.volumes)),
    Property("ThinPoolSize", "t", lambda p: p.thin_pool_size,
             "the size of the pool's thin pool in bytes (0: it has none)"),
    Property("ThinDataUsage", "d", lambda p: p.thin_data_usage,
             "the thin pool's data space in use, 0 to 1"),
    Property("ThinMetadataUsage", "d", lambda p: p.thin_metadata_usage,
             "the thin pool's metadata space in use, 0 to 1"),
    Property("VirtualAllocation", "t", lambda p: p.virtual_allocation,
             "the sum of the thin volumes' sizes (above ThinPoolSize when overcommitted)"),
    Property("Shared", "b", lambda p: bool(p.definition.lock_type),
             "a pool shared by several hosts (lvmlockd)", column=True),
    Property("LockType", "s", lambda p: p.definition.lock_type,
             "the lvmlockd lock type of a shared pool (sanlock), empty for a local pool"),
    Property("HostId", "u", lambda p: p.host_id,
             "this host's sanlock host_id in a shared pool (0 for a local pool)"),
)

VOLUME_PROPERTIES = (
    Property("Name", "s", lambda v: v.name, "the volume's (logical volume's) name"),
    Property("UUID", "s", lambda v: v.uuid, "the LV's UUID (its object path's last element)",
             fixed=True),
    Property("Pool", "o", lambda v: pool_path(v.pool_uuid), "the pool it is in", fixed=True),
    Property("Path", "s", lambda v: v.path, "its block device, /dev/VG/LV", column=True),
    Property("Capacity", "t", lambda v: v.capacity, "its size in bytes", column=True),
    Property("Active", "b", lambda v: v.active, "whether it has a device node now", column=True),
    Property("Thin", "b", lambda v: v.thin, "a thin volume of the pool's thin pool", column=True),
    Property("Origin", "o", lambda v: volume_path(v.pool_uuid, v.origin) if v.origin else "/",
             "the volume this one is a snapshot of ('/' when none)", column=True),
    Property("DataUsage", "d", lambda v: v.data_usage,
             "a thin volume's written share, a snapshot's copy-on-write space in use, 0 to 1",
             column=True),
    Property("Lock", "s", lambda v: v.lock,
             "in a shared pool, the lock this host holds on it: exclusive, shared or none",
             column=True),
)

JOB_PROPERTIES = (
    Property("Operation", "s", lambda j: j.operation, "what the job does", fixed=True, column=True),
    Property("Progress", "d", lambda j: j.progress, "0 to 1", column=True),
    Property("Completed", "b", lambda j: j.completed, "whether it has ended", column=True),
    Property("StartedByUID", "u", lambda j: j.uid, "who started it", fixed=True, column=True),
    Property("Error", "s", lambda j: j.error, "why it failed (empty on success)", column=True),
    Property("ErrorName", "s", lambda j: f"{ERROR_PREFIX}.{j.error_kind}" if j.error_kind else "",
             "the failure's D-Bus error name, as a method would answer it (empty on success)"),
)

PROPERTIES = {MANAGER_IFACE: MANAGER_PROPERTIES, POOL_IFACE: POOL_PROPERTIES,
              VOLUME_IFACE: VOLUME_PROPERTIES, JOB_IFACE: JOB_PROPERTIES}
