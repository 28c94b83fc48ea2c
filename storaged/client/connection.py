"""Storaged: one connection to storaged, its Manager's methods, listings and subscriptions."""
from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncIterator, Callable

from dbus_fast import BusType, Message, MessageType

from ..api import BUS_NAME, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH, POOL_IFACE, ROOT_PATH, VOLUME_IFACE
from .errors import Error, Failed, error_from
from .objects import OBJECT_TYPES, PROPERTIES_IFACE, Job, Object, Pool, Volume
from .transport import PatientMessageBus

# The bus storagectl and every client use when none is named: system, session or an address.
BUS_ENV = "STORAGED_BUS"
DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
OBJECT_MANAGER = f"{DBUS}.ObjectManager"

Handler = Callable[[str, str, list], None]  # member, path, body


def bus_address(bus: str | None = None) -> str:
    """Which bus: `bus` if given, else $STORAGED_BUS, else the system bus."""
    return bus or os.environ.get(BUS_ENV) or "system"


def describe_bus(bus: str) -> str:
    return f"the {bus} bus" if bus in ("system", "session") else f"the bus at {bus}"


def plain(props: dict) -> dict[str, Any]:
    """Variants' values."""
    return {name: v.value for name, v in props.items()}


def connect(bus: str | None = None) -> Connecting:
    """A connection to storaged on `bus`: 'system', 'session', or a D-Bus address
    (default: $STORAGED_BUS, else the system bus). Raises Failed if there is no such bus.
    `await connect()` is the connection; `async with connect() as storaged:` closes it after."""
    return Connecting(bus)


class Connecting:
    """What connect() returns: awaitable, or an async context manager."""

    def __init__(self, bus: str | None):
        self.bus = bus
        self.client: Storaged | None = None

    def __await__(self):
        return open_connection(self.bus).__await__()

    async def __aenter__(self) -> Storaged:
        self.client = await open_connection(self.bus)
        return self.client

    async def __aexit__(self, *exc) -> None:
        if self.client:
            await self.client.close()


async def open_connection(bus: str | None = None) -> Storaged:
    where = bus_address(bus)
    try:
        if where in ("system", "session"):
            # File descriptors pass (Volume.Open) where the bus allows them.
            conn = PatientMessageBus(bus_type=BusType.SYSTEM if where == "system" else BusType.SESSION,
                                     negotiate_unix_fd=True)
        else:
            conn = PatientMessageBus(bus_address=where, negotiate_unix_fd=True)
        await conn.connect()
    except Exception as exc:  # any failure here means the same to the caller
        raise Failed(f"cannot connect to {describe_bus(where)}: {exc}",
                     "org.freedesktop.DBus.Error.NoServer") from None
    return Storaged(conn, where)


class Storaged:
    """storaged as seen from one bus connection; `async with` closes it."""

    def __init__(self, bus, where: str = ""):
        self.bus = bus      # the dbus-fast MessageBus, for anything this does not cover
        self.where = where  # 'system', 'session' or the address

    async def close(self) -> None:
        self.bus.disconnect()
        with contextlib.suppress(Exception):  # the peer may have gone first
            await self.bus.wait_for_disconnect()

    # -------------------------------------------------------------- plain calls

    async def call(self, path: str, interface: str, member: str, signature: str = "",
                   body=(), destination: str = BUS_NAME) -> Any:
        """One method call; its one result (or list of them, or None); an Error on failure."""
        reply = await self.bus.call(Message(destination=destination, path=path, interface=interface,
                                            member=member, signature=signature, body=list(body)))
        if reply.message_type == MessageType.ERROR:
            raise error_from(reply.error_name or "", str(reply.body[0]) if reply.body else "")
        if not reply.body:
            return None
        return reply.body[0] if len(reply.body) == 1 else reply.body

    async def open_volume(self, path: str, mode: str) -> int:
        """Volume.Open: a file descriptor of the volume's block device ('r' or 'w'),
        which the caller closes."""
        reply = await self.bus.call(Message(destination=BUS_NAME, path=path, interface=VOLUME_IFACE,
                                            member="Open", signature="sa{sv}", body=[mode, {}]))
        if reply.message_type == MessageType.ERROR:
            raise error_from(reply.error_name or "", str(reply.body[0]) if reply.body else "")
        if not reply.unix_fds:
            raise Failed("storaged's answer carried no file descriptor (the bus does not pass them)")
        return reply.unix_fds[reply.body[0]]

    async def get(self, path: str, interface: str, name: str) -> Any:
        return (await self.call(path, PROPERTIES_IFACE, "Get", "ss", [interface, name])).value

    async def get_all(self, path: str, interface: str) -> dict[str, Any]:
        return plain(await self.call(path, PROPERTIES_IFACE, "GetAll", "s", [interface]))

    async def is_running(self) -> bool:
        """Whether storaged is on the bus now (asking does not start it)."""
        return await self.call(DBUS_PATH, DBUS, "NameHasOwner", "s", [BUS_NAME], destination=DBUS)

    # -------------------------------------------------------------- objects

    def pool(self, path: str) -> Pool:
        """The pool at `path`, properties not read yet (no call)."""
        return Pool(self, path)

    def volume(self, path: str) -> Volume:
        return Volume(self, path)

    def job(self, path: str) -> Job:
        return Job(self, path)

    async def managed_objects(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every object's properties by path and interface: one round trip."""
        tree = await self.call(ROOT_PATH, OBJECT_MANAGER, "GetManagedObjects")
        return {path: {iface: plain(props) for iface, props in ifaces.items()}
                for path, ifaces in tree.items()}

    async def objects(self, interface: str) -> list[Object]:
        """Every object with `interface`, with its properties, sorted by path."""
        cls = OBJECT_TYPES[interface]
        return [cls(self, path, ifaces[interface])
                for path, ifaces in sorted((await self.managed_objects()).items()) if interface in ifaces]

    async def pools(self) -> list[Pool]:
        return await self.objects(POOL_IFACE)  # type: ignore[return-value]

    async def volumes(self, pool: Pool | str | None = None) -> list[Volume]:
        """Every volume, or those of one pool (a Pool or its path)."""
        where = pool.object_path if isinstance(pool, Pool) else pool
        return [v for v in await self.objects(VOLUME_IFACE)
                if where is None or v.properties.get("Pool") == where]  # type: ignore[misc]

    async def jobs(self) -> list[Job]:
        return await self.objects(JOB_IFACE)  # type: ignore[return-value]

    # -------------------------------------------------------------- the Manager

    async def _manager(self, member: str, signature: str = "", body=()) -> Any:
        return await self.call(MANAGER_PATH, MANAGER_IFACE, member, signature, body)

    async def version(self) -> str:
        return await self.get(MANAGER_PATH, MANAGER_IFACE, "Version")

    async def define_pool(self, xml: str) -> Pool:
        """Define a pool from its XML, touching no storage."""
        return await self.pool(await self._manager("DefinePool", "s", [xml])).load()

    async def create_pool(self, xml: str) -> Pool:
        """Define, build and start a pool; check its state: it may be degraded."""
        return await self.pool(await self._manager("CreatePool", "s", [xml])).load()

    async def lookup_pool(self, name: str) -> Pool:
        return await self.pool(await self._manager("LookupPool", "s", [name])).load()

    async def lookup_volume(self, pool: str, volume: str) -> Volume:
        return await self.volume(await self._manager("LookupVolume", "ss", [pool, volume])).load()

    async def resolve_disk(self, disk_xml: str) -> str:
        """A guest's <disk type='volume'> as the <disk type='block'> it stands for."""
        return await self._manager("ResolveDisk", "s", [disk_xml])

    async def refresh(self) -> None:
        """Make storaged re-read LVM's state of every pool."""
        await self._manager("Refresh")

    # -------------------------------------------------------------- signals

    @contextlib.asynccontextmanager
    async def subscription(self, namespace: str, handler: Handler) -> AsyncIterator[None]:
        """`handler(member, path, body)` for storaged's signals under `namespace`,
        and for NameOwnerChanged of storaged's bus name (body[2] empty: it left)."""
        def on_message(msg: Message) -> None:
            if msg.message_type == MessageType.SIGNAL and (
                    msg.member == "NameOwnerChanged" and msg.body and msg.body[0] == BUS_NAME
                    or msg.path == namespace or (msg.path or "").startswith(namespace.rstrip("/") + "/")):
                handler(msg.member, msg.path, msg.body)

        rules = [f"type='signal',sender='{BUS_NAME}',path_namespace='{namespace}'",
                 f"type='signal',sender='{DBUS}',member='NameOwnerChanged',arg0='{BUS_NAME}'"]
        self.bus.add_message_handler(on_message)
        try:
            for rule in rules:
                await self.call(DBUS_PATH, DBUS, "AddMatch", "s", [rule], destination=DBUS)
            yield
        finally:
            self.bus.remove_message_handler(on_message)
            if self.bus.connected:
                for rule in rules:
                    with contextlib.suppress(Error):
                        await self.call(DBUS_PATH, DBUS, "RemoveMatch", "s", [rule], destination=DBUS)

    def events(self, namespace: str = ROOT_PATH):
        """`async with client.events() as events: async for event in events: ...`"""
        from .events import Events
        return Events(self, namespace)
