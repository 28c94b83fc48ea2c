"""Typed Pool, Volume and Job objects, their attributes made from storaged.api's tables."""
from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Callable

from ..api import (BUS_NAME, JOB_IFACE, JOB_PROPERTIES, POOL_IFACE, POOL_PROPERTIES,
                   VOLUME_IFACE, VOLUME_PROPERTIES, Property)
from .errors import NotRunning, error_named

if TYPE_CHECKING:
    from .connection import Storaged

PROPERTIES_IFACE = "org.freedesktop.DBus.Properties"


def words(name: str) -> list[str]:
    """'VolumeGroup' -> ['Volume', 'Group']; 'StartedByUID' -> ['Started', 'By', 'UID']."""
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*", name)


def snake(name: str) -> str:
    """A D-Bus property's name as a Python attribute: 'StateReason' -> 'state_reason'."""
    return "_".join(w.lower() for w in words(name))


def _attribute(prop: Property) -> property:
    def read(self: Object) -> Any:
        try:
            return self.properties[prop.name]
        except KeyError:
            raise AttributeError(f"{prop.name} of {self.object_path} is not known: await .load() first, "
                                 f"or this storaged does not have it") from None
    return property(read, doc=f"{prop.name} ({prop.signature}): {prop.doc}")


class Object:
    """One of storaged's objects: its object_path, and its properties as last read.

    The properties are a snapshot (from GetAll or GetManagedObjects): `load()`
    reads them again, and events say when they change.
    """

    INTERFACE = ""
    PROPERTIES: tuple[Property, ...] = ()

    def __init_subclass__(cls) -> None:
        for prop in cls.PROPERTIES:
            setattr(cls, snake(prop.name), _attribute(prop))

    def __init__(self, client: Storaged, path: str, properties: dict[str, Any] | None = None):
        self.client = client
        self.object_path = path  # (`path` is a Volume's device)
        self.properties: dict[str, Any] = dict(properties or {})

    def __repr__(self) -> str:
        name = self.properties.get("Name")
        return f"<{type(self).__name__} {name!r} {self.object_path}>" if name else \
            f"<{type(self).__name__} {self.object_path}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.object_path == self.object_path  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.object_path)

    async def load(self):
        """Read every property again; returns the object itself."""
        self.properties = await self.client.get_all(self.object_path, self.INTERFACE)
        return self

    async def get(self, name: str) -> Any:
        """One property's value now (and remembered)."""
        self.properties[name] = await self.client.get(self.object_path, self.INTERFACE, name)
        return self.properties[name]

    async def _call(self, member: str, signature: str = "", body=()) -> Any:
        return await self.client.call(self.object_path, self.INTERFACE, member, signature, body)


class Pool(Object):
    """A storage pool: an LVM volume group and the physical volumes under it."""

    INTERFACE = POOL_IFACE
    PROPERTIES = POOL_PROPERTIES

    async def allocate_volume(self, name: str, size: int, options: dict | None = None) -> Volume:
        """A new volume of `size` bytes (rounded up to the extent size)."""
        return self.client.volume(await self._call("AllocateVolume", "sta{sv}", [name, size, options or {}]))

    async def deallocate_volume(self, name: str) -> None:
        await self._call("DeallocateVolume", "s", [name])

    async def create_volume(self, xml: str) -> Volume:
        """A new volume from a <volume> definition."""
        return self.client.volume(await self._call("CreateVolume", "s", [xml]))

    async def add_physical_volume(self, xml: str) -> None:
        """Grow the pool by a <physical_volume>."""
        await self._call("AddPhysicalVolume", "s", [xml])

    async def remove_physical_volume(self, pv: str) -> Job:
        """Move the data off a PV (its device, or its file or device as in the XML) and drop it."""
        return self.client.job(await self._call("RemovePhysicalVolume", "s", [pv]))

    async def build(self) -> None:
        await self._call("Build")

    async def start(self) -> None:
        """Start it; it may then be degraded (see state and state_reason), not running."""
        await self._call("Start")

    async def stop(self) -> None:
        await self._call("Stop")

    async def delete(self) -> None:
        """Remove a stopped pool's storage (never an adopted VG, nor LVs storaged did not make)."""
        await self._call("Delete")

    async def undefine(self) -> None:
        await self._call("Undefine")

    async def refresh(self) -> None:
        """Make storaged re-read LVM's state of this pool."""
        await self._call("Refresh")

    async def set_autostart(self, autostart: bool) -> None:
        await self._call("SetAutostart", "b", [autostart])

    async def get_xml(self) -> str:
        return await self._call("GetXML")

    async def list_volumes(self) -> list[Volume]:
        """Its volumes, with their properties (one round trip)."""
        return await self.client.volumes(self)


class Volume(Object):
    """A volume: a logical volume of a pool, a block device when active."""

    INTERFACE = VOLUME_IFACE
    PROPERTIES = VOLUME_PROPERTIES

    async def delete(self) -> None:
        await self._call("Delete")

    async def resize(self, size: int, force: bool = False) -> Job:
        """Change its size; shrinking (which destroys data) needs force=True."""
        from dbus_fast import Variant
        options = {"force": Variant("b", True)} if force else {}
        return self.client.job(await self._call("Resize", "ta{sv}", [size, options]))

    async def wipe(self) -> Job:
        """Overwrite it with zeros."""
        return self.client.job(await self._call("Wipe"))

    async def get_xml(self) -> str:
        return await self._call("GetXML")


class Job(Object):
    """Work that takes a while; it stays readable for five minutes after it ends."""

    INTERFACE = JOB_IFACE
    PROPERTIES = JOB_PROPERTIES

    @property
    def number(self) -> str:
        return self.object_path.rsplit("/", 1)[-1]

    async def cancel(self) -> None:
        await self._call("Cancel")

    async def wait(self, progress: Callable[[float], None] | None = None) -> None:
        """Until the job ends; `progress(fraction)` on each step. Raises the job's own
        error kind when it fails (Failed when storaged does not export ErrorName),
        NotRunning when storaged leaves the bus first."""
        ended: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_signal(member: str, path: str, body: list) -> None:
            if ended.done():
                return
            if member == "NameOwnerChanged":
                if not body[2]:
                    ended.set_exception(NotRunning(
                        f"storaged went away before job {self.number} finished",
                        "org.freedesktop.DBus.Error.NameHasNoOwner"))
            elif path == self.object_path and member == "PropertiesChanged" and "Progress" in body[1]:
                if progress:
                    progress(body[1]["Progress"].value)
            elif path == self.object_path and member == "Completed":
                ended.set_result((body[0], body[1]))

        # Subscribed before reading the state: a job that ends in between is seen either way.
        async with self.client.subscription(self.object_path, on_signal):
            await self.load()
            if self.properties.get("Completed"):
                error = self.properties.get("Error", "")
                ok, message = not error, error
            else:
                ok, message = await ended
                await self.load()  # its final state, and ErrorName
        if not ok:
            raise error_named(self.properties.get("ErrorName", ""),
                              message or f"job {self.number} failed")


OBJECT_TYPES = {cls.INTERFACE: cls for cls in (Pool, Volume, Job)}
__all__ = ["BUS_NAME", "Job", "Object", "OBJECT_TYPES", "Pool", "Volume", "snake", "words"]
