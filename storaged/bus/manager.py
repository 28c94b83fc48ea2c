"""The Manager object: defining and creating pools, lookups, ResolveDisk."""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus
# signatures from the annotations as written.
from dbus_fast.service import method

from dbus_fast.service import ServiceInterface

from ..api import MANAGER_IFACE, MANAGER_PROPERTIES, pool_path, volume_path
from .calls import MANAGE_POOLS, Callers, call
from .properties import ModelInterface, exports


class ObjectManagerInterface(ServiceInterface):
    """Only for introspection: dbus-fast answers GetManagedObjects itself, and
    the service emits InterfacesAdded/Removed from this path."""

    def __init__(self):
        super().__init__("org.freedesktop.DBus.ObjectManager")

    @method()
    def GetManagedObjects(self) -> "a{oa{sa{sv}}}":  # pragma: no cover - answered by dbus-fast
        return {}


@exports(MANAGER_PROPERTIES)
class ManagerInterface(ModelInterface):
    """org.storaged.Storaged1.Manager at /org/storaged/Storaged1/Manager."""

    def __init__(self, engine, callers: Callers):
        super().__init__(MANAGER_IFACE)
        self.engine = engine
        self.callers = callers

    def model(self):
        return self.engine

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
    @call(MANAGE_POOLS)
    async def ImportPool(self, volume_group: "s") -> "o":
        return pool_path((await self.engine.import_pool(volume_group)).uuid)

    @method()
    @call()
    async def ResolveDomain(self, domain_xml: "s") -> "s":
        return self.engine.resolve_domain(domain_xml)

    @method()
    @call(MANAGE_POOLS)
    async def Refresh(self):
        await self.engine.refresh()
