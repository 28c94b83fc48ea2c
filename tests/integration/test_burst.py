"""A burst of signals or replies larger than the socket buffer must not take
the daemon off the bus (dbus-fast disconnects on a write that would block)."""
import asyncio
import os
import subprocess

from dbus_fast import Message

from storaged.client.transport import PatientMessageBus
from tests.harness import BUS_NAME, MANAGER, MGR, POOL


async def test_refresh_after_many_outside_lvcreates_keeps_the_daemon_on_the_bus(world, client):
    d = world.daemon()
    vg = f"{world.prefix}burst"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(vg, ("burst.img", "2G"))])
    # Created behind the daemon's back, then picked up by one Refresh: one
    # InterfacesAdded per volume, all written at once.
    script = "".join(f"lvcreate --yes --name b{i} --size 1m {vg}\n" for i in range(300))
    subprocess.run(["lvm"], input=script, text=True, capture_output=True, check=True,
                   env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"})
    # A burst of 2,000 calls with large replies at the same time, from 16
    # connections (a bus allows 128 pending replies per connection).
    clients = [await PatientMessageBus(bus_address=world.address).connect() for _ in range(16)]
    try:
        calls = [c.call(Message(destination=BUS_NAME, path=pool,
                                interface="org.freedesktop.DBus.Introspectable",
                                member="Introspect")) for c in clients for _ in range(125)]
        refresh = client.call(MANAGER, MGR, "Refresh")
        replies = await asyncio.gather(refresh, *calls)
    finally:
        for c in clients:
            c.disconnect()
    bad = [(r.error_name, r.body) for r in replies[1:] if not (r.body and "AllocateVolume" in r.body[0])]
    assert not bad, (len(bad), bad[:3])
    assert len(await client.get(pool, POOL, "Volumes")) == 300
    assert d.proc.poll() is None, d.log()
