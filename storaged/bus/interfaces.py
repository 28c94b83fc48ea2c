"""The Manager, Pool and Volume interfaces: each method is a thin call into the
engine; each property reads the engine's model."""
# No `from __future__ import annotations` here: dbus-fast reads the D-Bus
# signatures from the annotations as written.

from dbus_fast import Variant
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method, signal

from .. import __version__
from ..errors import InvalidArgument, NotAuthorized
from ..jobs import Job
from ..pools import Engine, Pool, Volume
from .calls import Callers, call
from .names import (JOB_IFACE, MANAGER_IFACE, POOL_IFACE, VOLUME_IFACE, job_path, pool_path,
                    volume_path)

MANAGE_POOLS = "org.storaged.Storaged1.manage-pools"
MANAGE_VOLUMES = "org.storaged.Storaged1.manage-volumes"
READ = PropertyAccess.READ


class ObjectManagerInterface(ServiceInterface):
    """Only for introspection: dbus-fast answers GetManagedObjects itself, and
    the service emits InterfacesAdded/Removed from this path."""

    def __init__(self):
        super().__init__("org.freedesktop.DBus.ObjectManager")

    @method()
    def GetManagedObjects(self) -> "a{oa{sa{sv}}}":  # pragma: no cover - answered by dbus-fast
        return {}


class ManagerInterface(ServiceInterface):
    def __init__(self, engine: Engine, callers: Callers):
        super().__init__(MANAGER_IFACE)
        self.engine = engine
        self.callers = callers

    def props(self):
        return {"Version": Variant("s", __version__),
                "Pools": Variant("ao", self._pools())}

    def _pools(self):
        return sorted(pool_path(uuid) for uuid in self.engine.pools)

    @method()
    @call(MANAGE_POOLS)
    async def DefinePool(self, xml: "s") -> "o":
        return pool_path((await self.engine.define(xml)).uuid)

    @method()
    @call(MANAGE_POOLS)
    async def CreatePool(self, xml: "s") -> "o":
        return pool_path((await self.engine.create(xml)).uuid)

    @method()
    @call()
    async def LookupPool(self, name: "s") -> "o":
        return pool_path(self.engine.pool_by_name(name).uuid)

    @method()
    @call()
    async def LookupVolume(self, pool: "s", volume: "s") -> "o":
        p = self.engine.pool_by_name(pool)
        return volume_path(p.uuid, self.engine.volume(p, volume).uuid)

    @method()
    @call()
    async def ResolveDisk(self, disk_xml: "s") -> "s":
        return self.engine.resolve_disk(disk_xml)

    @method()
    @call(MANAGE_POOLS)
    async def ImportLibvirtPool(self, xml: "s") -> "o":
        return pool_path((await self.engine.import_libvirt_pool(xml)).uuid)

    @method()
    @call()
    async def ResolveDomain(self, domain_xml: "s") -> "s":
        return self.engine.resolve_domain(domain_xml)

    @method()
    @call(MANAGE_POOLS)
    async def Refresh(self):
        await self.engine.refresh()

    @dbus_property(access=READ)
    def Version(self) -> "s":
        return __version__

    @dbus_property(access=READ)
    def Pools(self) -> "ao":
        return self._pools()


class _FollowsModel(ServiceInterface):
    """An interface whose changing properties mirror fields of an engine object:
    FIELDS maps the engine's field name to (D-Bus property, signature, getter)."""

    FIELDS: dict = {}

    def fixed_props(self) -> dict:
        return {}

    def model(self):
        raise NotImplementedError

    def props(self, fields=None) -> dict:
        """Every property (for InterfacesAdded), or those of the changed fields."""
        out = {} if fields else self.fixed_props()
        obj = self.model()
        for f in fields or self.FIELDS:
            if f in self.FIELDS:
                name, sig, get = self.FIELDS[f]
                out[name] = Variant(sig, get(obj))
        return out


class PoolInterface(_FollowsModel):
    def __init__(self, engine: Engine, callers: Callers, pool: Pool):
        super().__init__(POOL_IFACE)
        self.engine = engine
        self.callers = callers
        self.pool = pool

    # Engine field -> (D-Bus property, signature, getter)
    FIELDS = {
        "name": ("Name", "s", lambda p: p.name),
        "volume_group": ("VolumeGroup", "s", lambda p: p.vg_name),
        "state": ("State", "s", lambda p: p.state),
        "reason": ("StateReason", "s", lambda p: p.reason),
        "capacity": ("Capacity", "t", lambda p: p.capacity),
        "allocation": ("Allocation", "t", lambda p: p.allocation),
        "available": ("Available", "t", lambda p: p.available),
        "autostart": ("Autostart", "b", lambda p: p.autostart),
        "physical_volumes": ("PhysicalVolumes", "as", lambda p: list(p.physical_volumes)),
        "volumes": ("Volumes", "ao", lambda p: sorted(volume_path(p.uuid, u) for u in p.volumes)),
    }

    def fixed_props(self):
        return {"UUID": Variant("s", self.pool.uuid)}

    def model(self):
        return self.pool

    @method()
    @call(MANAGE_VOLUMES)
    async def AllocateVolume(self, name: "s", size: "t", options: "a{sv}") -> "o":
        _no_options(options)
        vol = await self.engine.allocate_volume(self.pool, name, size)
        return volume_path(self.pool.uuid, vol.uuid)

    @method()
    @call(MANAGE_VOLUMES)
    async def DeallocateVolume(self, name: "s"):
        await self.engine.deallocate_volume(self.pool, name)

    @method()
    @call(MANAGE_VOLUMES)
    async def CreateVolume(self, xml: "s") -> "o":
        vol = await self.engine.create_volume(self.pool, xml)
        return volume_path(self.pool.uuid, vol.uuid)

    @method()
    @call(MANAGE_POOLS)
    async def AddPhysicalVolume(self, xml: "s"):
        await self.engine.add_physical_volume(self.pool, xml)

    @method()
    @call(MANAGE_POOLS)
    async def RemovePhysicalVolume(self, id: "s") -> "o":
        uid = await self.callers.caller_uid()
        return job_path((await self.engine.remove_physical_volume(self.pool, id, uid)).id)

    @method()
    @call(MANAGE_POOLS)
    async def Build(self):
        await self.engine.build(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def Start(self):
        await self.engine.start(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def Stop(self):
        await self.engine.stop(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def Delete(self):
        await self.engine.delete(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def Undefine(self):
        await self.engine.undefine(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def Refresh(self):
        await self.engine.refresh(self.pool)

    @method()
    @call(MANAGE_POOLS)
    async def SetAutostart(self, autostart: "b"):
        await self.engine.set_autostart(self.pool, autostart)

    @method()
    @call()
    async def GetXML(self) -> "s":
        return self.engine.pool_xml(self.pool)

    @dbus_property(access=READ)
    def Name(self) -> "s":
        return self.pool.name

    @dbus_property(access=READ)
    def UUID(self) -> "s":
        return self.pool.uuid

    @dbus_property(access=READ)
    def VolumeGroup(self) -> "s":
        return self.pool.vg_name

    @dbus_property(access=READ)
    def State(self) -> "s":
        return self.pool.state

    @dbus_property(access=READ)
    def StateReason(self) -> "s":
        return self.pool.reason

    @dbus_property(access=READ)
    def Capacity(self) -> "t":
        return self.pool.capacity

    @dbus_property(access=READ)
    def Allocation(self) -> "t":
        return self.pool.allocation

    @dbus_property(access=READ)
    def Available(self) -> "t":
        return self.pool.available

    @dbus_property(access=READ)
    def Autostart(self) -> "b":
        return self.pool.autostart

    @dbus_property(access=READ)
    def PhysicalVolumes(self) -> "as":
        return list(self.pool.physical_volumes)

    @dbus_property(access=READ)
    def Volumes(self) -> "ao":
        return self.FIELDS["volumes"][2](self.pool)


class VolumeInterface(_FollowsModel):
    def __init__(self, engine: Engine, callers: Callers, pool: Pool, volume: Volume):
        super().__init__(VOLUME_IFACE)
        self.engine = engine
        self.callers = callers
        self.pool = pool
        self.volume = volume

    FIELDS = {
        "name": ("Name", "s", lambda v: v.name),
        "path": ("Path", "s", lambda v: v.path),
        "capacity": ("Capacity", "t", lambda v: v.capacity),
        "active": ("Active", "b", lambda v: v.active),
    }

    def fixed_props(self):
        return {"UUID": Variant("s", self.volume.uuid), "Pool": Variant("o", pool_path(self.pool.uuid))}

    def model(self):
        return self.volume

    @method()
    @call(MANAGE_VOLUMES)
    async def Delete(self):
        await self.engine.deallocate_volume(self.pool, self.volume.name)

    @method()
    @call(MANAGE_VOLUMES)
    async def Resize(self, size: "t", options: "a{sv}") -> "o":
        force = _options(options, {"force": "b"}).get("force", False)
        uid = await self.callers.caller_uid()
        job = self.engine.resize_volume(self.pool, self.volume.name, size, force, uid)
        return job_path(job.id)

    @method()
    @call(MANAGE_VOLUMES)
    async def Wipe(self) -> "o":
        uid = await self.callers.caller_uid()
        return job_path(self.engine.wipe_volume(self.pool, self.volume.name, uid).id)

    @method()
    @call()
    async def GetXML(self) -> "s":
        return self.engine.volume_xml(self.volume)

    @dbus_property(access=READ)
    def Name(self) -> "s":
        return self.volume.name

    @dbus_property(access=READ)
    def UUID(self) -> "s":
        return self.volume.uuid

    @dbus_property(access=READ)
    def Pool(self) -> "o":
        return pool_path(self.pool.uuid)

    @dbus_property(access=READ)
    def Path(self) -> "s":
        return self.volume.path

    @dbus_property(access=READ)
    def Capacity(self) -> "t":
        return self.volume.capacity

    @dbus_property(access=READ)
    def Active(self) -> "b":
        return self.volume.active


class JobInterface(_FollowsModel):
    def __init__(self, callers: Callers, job: Job):
        super().__init__(JOB_IFACE)
        self.callers = callers
        self.job = job

    FIELDS = {
        "progress": ("Progress", "d", lambda j: j.progress),
        "completed": ("Completed", "b", lambda j: j.completed),
        "error": ("Error", "s", lambda j: j.error),
    }

    def fixed_props(self):
        return {"Operation": Variant("s", self.job.operation), "StartedByUID": Variant("u", self.job.uid)}

    def model(self):
        return self.job

    @method()
    @call()
    async def Cancel(self):
        uid = await self.callers.caller_uid()
        if uid not in (0, self.job.uid):
            raise NotAuthorized(f"only root or uid {self.job.uid}, who started it, may cancel this job")
        if not self.job.cancel():
            raise InvalidArgument(f"job {self.job.id} has already completed")

    @signal()
    def Completed(self, success, message) -> "bs":
        return [success, message]

    @dbus_property(access=READ)
    def Operation(self) -> "s":
        return self.job.operation

    @dbus_property(access=READ)
    def Progress(self) -> "d":
        return self.job.progress

    @dbus_property(access=READ, name="Completed")
    def CompletedProperty(self) -> "b":
        return self.job.completed

    @dbus_property(access=READ)
    def Error(self) -> "s":
        return self.job.error

    @dbus_property(access=READ)
    def StartedByUID(self) -> "u":
        return self.job.uid


def _options(options, allowed: dict[str, str]) -> dict:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgument(f"unknown option(s): {', '.join(unknown)}")
    out = {}
    for key, variant in options.items():
        if variant.signature != allowed[key]:
            raise InvalidArgument(f"option {key} must be of type {allowed[key]!r}, "
                                  f"not {variant.signature!r}")
        out[key] = variant.value
    return out


def _no_options(options) -> None:
    if options:
        raise InvalidArgument(f"unknown option(s): {', '.join(sorted(options))}")
