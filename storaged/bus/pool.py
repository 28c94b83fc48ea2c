"""The Pool objects: lifecycle, volumes and physical volumes of one pool."""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus
# signatures from the annotations as written.
from dbus_fast.service import method

from ..api import POOL_IFACE, POOL_PROPERTIES, job_path, volume_path
from .calls import MANAGE_POOLS, MANAGE_VOLUMES, Callers, call, options_of
from .properties import ModelInterface, exports


@exports(POOL_PROPERTIES)
class PoolInterface(ModelInterface):
    """org.storaged.Storaged1.Pool at /org/storaged/Storaged1/pools/UUID."""

    def __init__(self, engine, callers: Callers, pool):
        super().__init__(POOL_IFACE)
        self.engine = engine
        self.callers = callers
        self.pool = pool

    def model(self):
        return self.pool

    @method()
    @call(MANAGE_VOLUMES)
    async def AllocateVolume(self, name: "s", size: "t", options: "a{sv}") -> "o":
        thin = options_of(options, {"thin": "b"}).get("thin", False)
        vol = await self.engine.allocate_volume(self.pool, name, size, thin=thin)
        return volume_path(self.pool.uuid, vol.uuid)

    @method()
    @call(MANAGE_POOLS)
    async def CreateThinPool(self, size: "t", options: "a{sv}"):
        opts = options_of(options, {"autoextend_threshold": "u", "autoextend_percent": "u"})
        await self.engine.create_thin_pool(self.pool, size, opts.get("autoextend_threshold", 80),
                                           opts.get("autoextend_percent", 20))

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
