"""A client that builds its view of storaged from signals alone (as storagectl
monitor and the Cockpit page do) must end up with what GetManagedObjects says,
after every lifecycle call and every outside change."""
import asyncio
import time

from dbus_fast import Variant

from tests.harness import MANAGER, MGR, POOL, ROOT, VOL, MiB, subscribe
from tests.integration.test_device_pvs import disk
from tests.lvmenv import lvm

OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"


def plain(tree: dict) -> dict:
    return {path: {iface: {k: v.value for k, v in props.items()} for iface, props in ifaces.items()}
            for path, ifaces in tree.items()}


class Mirror:
    """The objects as the signals tell them, starting from one GetManagedObjects."""

    def __init__(self, signals, tree: dict):
        self.signals = signals
        self.applied = len(signals.seen)
        self.tree = plain(tree)

    def catch_up(self) -> None:
        for msg in self.signals.seen[self.applied:]:
            if msg.member == "InterfacesAdded" and msg.path == ROOT:
                path, ifaces = msg.body
                for iface, props in plain({path: ifaces})[path].items():
                    self.tree.setdefault(path, {})[iface] = props
            elif msg.member == "InterfacesRemoved" and msg.path == ROOT:
                path, ifaces = msg.body
                for iface in ifaces:
                    self.tree.get(path, {}).pop(iface, None)
                if not self.tree.get(path, True):
                    del self.tree[path]
            elif msg.member == "PropertiesChanged" and msg.path in self.tree:
                iface, changed, _ = msg.body
                self.tree[msg.path].setdefault(iface, {}).update(
                    {k: v.value for k, v in changed.items()})
        self.applied = len(self.signals.seen)


async def truth(client) -> dict:
    return plain(await client.call(ROOT, OBJECT_MANAGER, "GetManagedObjects"))


async def converged(mirror: Mirror, client, step: str, timeout: float = 5.0) -> None:
    """The signals' view equals GetManagedObjects (outside changes take a poll
    to be seen, so allow a few seconds for both to settle)."""
    deadline = time.monotonic() + timeout
    while True:
        await asyncio.sleep(0.2)
        mirror.catch_up()
        real = await truth(client)
        if mirror.tree == real or time.monotonic() > deadline:
            break
    diff = {p: (mirror.tree.get(p), real.get(p)) for p in set(mirror.tree) | set(real)
            if mirror.tree.get(p) != real.get(p)}
    assert not diff, f"after {step}, signals and GetManagedObjects differ: {diff}"


async def test_signals_alone_keep_a_client_true(world, client):
    world.daemon()
    sig = await subscribe(client)
    mirror = Mirror(sig, await client.call(ROOT, OBJECT_MANAGER, "GetManagedObjects"))
    name = f"{world.prefix}sig"

    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("sig.img", "64M"))])
    await converged(mirror, client, "CreatePool")
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v1", 4 * MiB, {}])
    await converged(mirror, client, "AllocateVolume")
    await client.call(pool, POOL, "Stop")
    await converged(mirror, client, "Stop")
    assert mirror.tree[pool][POOL]["Volumes"] == [] and mirror.tree[pool][POOL]["State"] == "inactive"
    await client.call(pool, POOL, "Start")
    await converged(mirror, client, "Start")
    assert mirror.tree[pool][POOL]["State"] == "running"
    await client.call(pool, POOL, "Build")
    await converged(mirror, client, "Build of a running pool")
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    await converged(mirror, client, "SetAutostart")

    lvm("lvcreate", "--yes", "-n", "outside", "-L", "4m", name)
    await converged(mirror, client, "an outside lvcreate")
    lvm("lvrename", name, "outside", "renamed")
    await converged(mirror, client, "an outside lvrename")
    lvm("lvresize", "--yes", "-L", "8m", f"{name}/renamed")
    await converged(mirror, client, "an outside lvresize")
    lvm("lvremove", "--yes", f"{name}/renamed")
    await converged(mirror, client, "an outside lvremove")
    extra = disk(world, "extra.disk")
    lvm("pvcreate", "--yes", extra)
    lvm("vgextend", name, extra)
    await converged(mirror, client, "an outside vgextend")
    lvm("vgreduce", name, extra)
    await converged(mirror, client, "an outside vgreduce")

    vol = await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "v1"])
    await client.call(vol, VOL, "Resize", "ta{sv}", [8 * MiB, {"force": Variant("b", False)}])
    await converged(mirror, client, "Resize")
    await client.call(pool, POOL, "DeallocateVolume", "s", ["v1"])
    await converged(mirror, client, "DeallocateVolume")
    await client.call(MANAGER, MGR, "Refresh")
    await converged(mirror, client, "Refresh")
    await client.call(pool, POOL, "Stop")
    await client.call(pool, POOL, "Delete")
    await converged(mirror, client, "Stop and Delete")
    await client.call(pool, POOL, "Undefine")
    await converged(mirror, client, "Undefine")
    assert pool not in mirror.tree
