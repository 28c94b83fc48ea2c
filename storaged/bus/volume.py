"""The Volume objects: one logical volume of a pool."""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus
# signatures from the annotations as written.
import asyncio
import os

from dbus_fast.service import method

from ..api import VOLUME_IFACE, VOLUME_PROPERTIES, job_path, pool_path, volume_path
from ..errors import InvalidArgument
from .calls import ACCESS_VOLUMES, MANAGE_VOLUMES, Callers, call, no_options, options_of
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
    @call(MANAGE_VOLUMES)
    async def Snapshot(self, name: "s", options: "a{sv}") -> "o":
        size = options_of(options, {"size": "t"}).get("size")
        vol = await self.engine.snapshot_volume(self.pool, self.volume.name, name, size)
        return volume_path(self.pool.uuid, vol.uuid)

    @method()
    @call(MANAGE_VOLUMES)
    async def Revert(self) -> "o":
        uid = await self.callers.caller_uid()
        return job_path(self.engine.revert_volume(self.pool, self.volume.name, uid).id)

    @method()
    @call(MANAGE_VOLUMES)
    async def Clone(self, name: "s", options: "a{sv}") -> "oo":
        opts = options_of(options, {"thin": "b", "pool": "o"})
        target = None
        if "pool" in opts:
            target = next((p for p in self.engine.pools.values()
                           if pool_path(p.uuid) == opts["pool"]), None)
            if target is None:
                raise InvalidArgument(f"option pool: {opts['pool']} is not a pool's object path")
        uid = await self.callers.caller_uid()
        vol, job = await self.engine.clone_volume(self.pool, self.volume.name, name, uid,
                                                  thin=opts.get("thin"), target=target)
        return [volume_path(vol.pool_uuid, vol.uuid), job_path(job.id)]

    @method()
    @call(MANAGE_VOLUMES)
    async def Rename(self, name: "s"):
        await self.engine.rename_volume(self.pool, self.volume.name, name)

    @method()
    @call(MANAGE_VOLUMES)
    async def Activate(self, options: "a{sv}"):
        shared = options_of(options, {"shared": "b"}).get("shared", False)
        await self.engine.activate_volume(self.pool, self.volume.name, shared)

    @method()
    @call(MANAGE_VOLUMES)
    async def Deactivate(self):
        await self.engine.set_volume_active(self.pool, self.volume.name, False)

    @method()
    @call(ACCESS_VOLUMES)
    async def Open(self, mode: "s", options: "a{sv}") -> "h":
        no_options(options)
        fd = self.engine.open_volume(self.pool, self.volume.name, mode)
        close_when_sent(self.callers.bus, fd)
        return fd

    @method()
    @call()
    async def GetXML(self) -> "s":
        return self.engine.volume_xml(self.volume)


def close_when_sent(bus, fd: int) -> None:
    """Close the daemon's copy of a file descriptor once the reply carrying it
    has left: dbus-fast queues the reply after the method returns and sends
    the descriptor with it, later."""
    loop = asyncio.get_running_loop()

    def check(tries: int = 0) -> None:
        writer = getattr(bus, "_writer", None)
        pending = list(getattr(writer, "unix_fds", None) or [])
        for entry in getattr(writer, "messages", ()):
            pending += list(entry[1] or [])
        if fd in pending and tries < 600:
            loop.call_later(0.1, check, tries + 1)
        else:
            os.close(fd)
    loop.call_later(0.2, check)
