import os
import secrets
import tempfile

import pytest
from dbus_fast.aio import MessageBus

from storaged.client import connect

from tests.harness import PERMISSIVE_POLICY, Daemon, TestBus, bus_call
from tests.lvmenv import cleanup, make_lvm_system_dir


@pytest.fixture
def world():
    """A private LVM world and bus; everything under one temp dir, removed after."""
    yield from _world(None)


@pytest.fixture
def permissive_world():
    """As `world`, but the bus lets everyone call everything: only the daemon decides."""
    yield from _world(PERMISSIVE_POLICY)


def _world(policy):
    base = tempfile.mkdtemp(prefix="storaged-test-", dir="/tmp")
    old = os.environ.get("LVM_SYSTEM_DIR")
    os.environ["LVM_SYSTEM_DIR"] = make_lvm_system_dir(base)
    bus = None
    try:
        bus = TestBus(base, policy)
        yield World(base, bus)
    finally:
        for d in World.daemons.pop(base, []):
            d.stop()
        if bus:
            bus.stop()
        if not os.environ.get("STORAGED_KEEP_TEST_DIR"):
            cleanup(base)
        if old is None:
            os.environ.pop("LVM_SYSTEM_DIR", None)
        else:
            os.environ["LVM_SYSTEM_DIR"] = old


class World:
    daemons: dict[str, list[Daemon]] = {}

    def __init__(self, base: str, bus: TestBus):
        self.base = base
        self.bus = bus
        self.address = bus.address
        self.prefix = "t" + secrets.token_hex(3)

    def daemon(self, *extra: str, default_pool: bool = False, env: dict | None = None) -> Daemon:
        if default_pool:
            os.makedirs(os.path.join(self.base, "etc"), exist_ok=True)
            with open(os.path.join(self.base, "etc", "storaged.conf"), "w") as f:
                f.write(f"[daemon]\ndefault_pool_size = 64M\n"
                        f"default_pool_volume_group = {self.prefix}_vg_default\n")
        else:
            extra = ("--no-default-pool", *extra)
        d = Daemon(self.base, self.address, *extra, env=env)
        World.daemons.setdefault(self.base, []).append(d)
        return d.start()

    def path(self, name: str) -> str:
        return os.path.join(self.base, name)

    def pool_xml(self, name: str, *files: tuple[str, str], vg: str | None = None,
                 volumes: str = "") -> str:
        pvs = "".join(f"<physical_volume type='file'><file size='{size}'>{self.path(f)}</file>"
                      f"</physical_volume>" for f, size in files)
        vg_el = f"<volume_group>{vg}</volume_group>" if vg else ""
        return f"<pool type='lvm'><name>{name}</name>{vg_el}{pvs}{volumes}</pool>"


class Client:
    """Plain method calls and property reads, through the one call helper (bus_call)."""

    def __init__(self, bus: MessageBus):
        self.bus = bus

    async def call(self, path, iface, member, signature="", body=()):
        return await bus_call(self.bus, path, iface, member, signature, body)

    async def get(self, path, iface, prop):
        v = await self.call(path, "org.freedesktop.DBus.Properties", "Get", "ss", [iface, prop])
        return v.value

    async def get_all(self, path, iface):
        v = await self.call(path, "org.freedesktop.DBus.Properties", "GetAll", "s", [iface])
        return {k: x.value for k, x in v.items()}


async def _connect(address):
    storaged = await connect(address)
    try:
        yield Client(storaged.bus)
    finally:
        await storaged.close()


@pytest.fixture
async def client(world):
    async for c in _connect(world.address):
        yield c


@pytest.fixture
async def pclient(permissive_world):
    """A root client on the permissive bus."""
    async for c in _connect(permissive_world.address):
        yield c
