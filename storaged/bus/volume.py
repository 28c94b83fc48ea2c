"""The Volume objects: one logical volume of a pool."""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus
# signatures from the annotations as written.
from dbus_fast.service import method

from ..api import VOLUME_IFACE, VOLUME_PROPERTIES, job_path
from .calls import MANAGE_VOLUMES, Callers, call, options_of
from .properties import ModelInterface, exports


@exports(VOLUME_PROPERTIES)
class VolumeInterface(ModelInterface):
    """org.storaged.Storaged1.Volume at .../pools/UUID/volumes/LV_UUID."""

    def __init__(self, engine, callers: Callers, pool, volume):
        super().__init__(VOLUME_IFACE)
        self.engine = engine
        self.callers = callers
        self.pool = pool
        self.volume = volume  # replaced by the newer state object after each refresh

    def model(self):
        return self.volume

    @method()
    @call(MANAGE_VOLUMES)
    async def Delete(self):
        await self.engine.deallocate_volume(self.pool, self.volume.name)

    @method()
    @call(MANAGE_VOLUMES)
    async def Resize(self, size: "t", options: "a{sv}") -> "o":
        force = options_of(options, {"force": "b"}).get("force", False)
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
