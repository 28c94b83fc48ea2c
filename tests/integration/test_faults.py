"""Load and faults: concurrent clients, a hung LVM command, an LVM failure in
the middle of an operation. Faults are injected by an `lvm` wrapper the test
puts first on the daemon's PATH; the product knows nothing of it."""
import asyncio
import json
import os
import shutil
import subprocess
import time

import pytest
from dbus_fast import DBusError

from storaged.client.transport import PatientMessageBus
from tests.harness import MANAGER, MGR, POOL, MiB
from tests.harness import bus_call as call
from tests.lvmenv import lvm, lvm_state

ERR = "org.storaged.Storaged1.Error."

WRAPPER = """#!/bin/sh
# Test fault injection: a named volume makes lvcreate hang or fail.
for a in "$@"; do
  case "$a" in
    hang-*) sleep 600 ;;
    boom-*) echo "  Injected failure: the disk is on fire." >&2; exit 5 ;;
  esac
done
exec {real} "$@"
"""


def with_wrapper(world, timeout=3):
    bindir = world.path("bin")
    os.makedirs(bindir, exist_ok=True)
    with open(os.path.join(bindir, "lvm"), "w") as f:
        f.write(WRAPPER.format(real=shutil.which("lvm")))
    os.chmod(os.path.join(bindir, "lvm"), 0o755)
    os.makedirs(world.path("etc"), exist_ok=True)
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write(f"[daemon]\ncommand_timeout = {timeout}\n")
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def lv_names(vg):
    out = lvm("lvs", "--reportformat", "json", "-o", "lv_name", vg).stdout
    return {lv["lv_name"] for lv in json.loads(out)["report"][0]["lv"]}


async def test_sixteen_clients_allocate_in_one_pool(world, client):
    world.daemon()
    vg = f"{world.prefix}busy"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("busy.img", "64M"))])
    buses = [await PatientMessageBus(bus_address=world.address).connect() for _ in range(16)]
    try:
        async def one(i, j):
            try:
                await call(buses[i], pool, POOL, "AllocateVolume", "sta{sv}", [f"c{i}x{j}", 8 * MiB, {}])
                return "ok"
            except DBusError as exc:
                return exc.type
        results = await asyncio.gather(*(one(i, j) for i in range(16) for j in range(2)))
    finally:
        for b in buses:
            b.disconnect()
    assert set(results) <= {"ok", ERR + "NoSpace"}, set(results)
    assert results.count("ok") == 7  # 60 MiB of extents, 8 MiB each
    vols = await client.get(pool, POOL, "Volumes")
    names = set()
    for v in vols:
        names.add(await client.get(v, "org.storaged.Storaged1.Volume", "Name"))
    assert names == lv_names(vg) and len(names) == 7
    assert await client.get(pool, POOL, "Available") == 60 * MiB - 7 * 8 * MiB


async def test_a_hung_command_times_out_and_other_pools_are_served(world, client):
    world.daemon(env=with_wrapper(world, timeout=3))
    vg = f"{world.prefix}hung"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("h.img", "32M"))])
    other = await client.call(MANAGER, MGR, "CreatePool", "s",
                              [world.pool_xml(f"{world.prefix}fine", ("fine.img", "32M"))])
    t = time.monotonic()
    hung = asyncio.ensure_future(client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["hang-1", MiB, {}]))
    await asyncio.sleep(0.3)
    # Reads, and changes to another pool, go on meanwhile.
    assert await client.get(pool, POOL, "State") == "running"
    await client.call(other, POOL, "AllocateVolume", "sta{sv}", ["meanwhile", MiB, {}])
    assert time.monotonic() - t < 2.5
    assert not hung.done()
    with pytest.raises(DBusError) as info:
        await hung
    assert info.value.type == ERR + "Failed"
    assert "did not finish within 3 s" in info.value.text
    assert lv_names(vg) == set()
    assert "meanwhile" in lv_names(f"{world.prefix}fine")
    # the pool is usable again
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["after", MiB, {}])
    assert lv_names(vg) == {"after"}


async def test_an_lvm_failure_leaves_a_clean_state_and_carries_lvms_message(world, client):
    world.daemon(env=with_wrapper(world))
    vg = f"{world.prefix}boom"
    volumes = "<volume><name>boom-declared</name><capacity unit='M'>4</capacity></volume>"
    # A failure in the middle of CreatePool (after pvcreate and vgcreate), on a
    # disk: the disk must come out of it without a PV label or VG.
    disk = world.path("disk.img")
    with open(disk, "wb") as f:
        f.truncate(32 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", disk], capture_output=True, text=True,
                         check=True).stdout.strip()
    before = lvm_state()
    xml = (f"<pool type='lvm'><name>{vg}</name><physical_volume type='device'><device>{dev}</device>"
           f"</physical_volume><physical_volume type='file'><file size='32M'>{world.path('boom.img')}"
           f"</file></physical_volume>{volumes}</pool>")
    with pytest.raises(DBusError) as info:
        await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    assert info.value.type == ERR + "Failed" and "the disk is on fire" in info.value.text
    assert not os.path.exists(world.path("boom.img"))
    assert lvm_state() == before
    assert "LVM2_member" not in subprocess.run(["blkid", "-p", dev], capture_output=True, text=True).stdout
    assert await client.get(MANAGER, MGR, "Pools") == []
    # And in the middle of a running pool's life:
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("boom.img", "32M"))])
    state = lvm_state()
    with pytest.raises(DBusError) as info:
        await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["boom-1", MiB, {}])
    assert info.value.type == ERR + "Failed" and "the disk is on fire" in info.value.text
    assert lvm_state() == state
    assert await client.get(pool, POOL, "Volumes") == []


def test_losing_the_bus_exits_non_zero_for_systemd_to_restart(world):
    d = world.daemon()
    world.bus.stop()
    assert d.proc.wait(timeout=30) == 2
    assert "lost the connection to the bus" in d.log()
    assert "never retrieved" not in d.log()  # the reason is read, not left to asyncio's last words
