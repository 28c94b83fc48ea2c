"""Crash safety: kill -9 the daemon at each step of a multi-step operation;
the next start converges with no orphan loop device, VG, file or definition.

The kill comes from `lvm` and `losetup` wrappers the test puts first on the
daemon's PATH: at the chosen command they SIGKILL their parent (the daemon),
before or after running the real command. The product knows nothing of them."""
import asyncio
import json
import os
import shutil

import pytest
from dbus_fast import DBusError

from tests.harness import MANAGER, MGR, POOL, MiB
from tests.lvmenv import loops_under, lvm


WRAPPER = """#!/bin/sh
# Test fault injection: SIGKILL the daemon at $STORAGED_TEST_KILL_AT (once).
real={real}
case " $* " in
  *" {step} "*)
    if [ ! -e "{marker}" ]; then
      touch "{marker}"
      if [ "{when}" = after ]; then "$real" "$@"; fi
      kill -9 "$PPID"
      exit 1
    fi ;;
esac
exec "$real" "$@"
"""


def killer_env(world, tool, step, when):
    bindir = world.path("bin")
    os.makedirs(bindir, exist_ok=True)
    for name in ("lvm", "losetup"):
        path = os.path.join(bindir, name)
        if name == tool:
            text = WRAPPER.format(real=shutil.which(name), step=step, when=when,
                                  marker=world.path(f"killed-{name}"))
        else:
            text = f"#!/bin/sh\nexec {shutil.which(name)} \"$@\"\n"
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def vgs():
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_name").stdout
    return {v["vg_name"] for v in json.loads(out)["report"][0]["vg"]}


async def call_expecting_death(client, *args):
    try:
        await client.call(*args)
    except DBusError:
        return  # the daemon died mid-call: NoReply
    pytest.fail("the daemon survived its kill")


STEPS = [("losetup", "--find", "after"), ("lvm", "pvcreate", "before"), ("lvm", "pvcreate", "after"),
         ("lvm", "vgcreate", "after"), ("lvm", "lvcreate", "after"), ("lvm", "vgchange", "after")]


@pytest.mark.parametrize("tool,step,when", STEPS, ids=[f"{s}-{w}" for _, s, w in STEPS])
async def test_kill_during_create_pool_rolls_back(world, client, tool, step, when):
    world.daemon(env=killer_env(world, tool, step, when))
    vg = f"{world.prefix}crash"
    volumes = "<volume><name>v</name><capacity unit='M'>4</capacity></volume>"
    xml = world.pool_xml(vg, ("c1.img", "32M"), ("c2.img", "32M"), volumes=volumes)
    await call_expecting_death(client, MANAGER, MGR, "CreatePool", "s", [xml])
    assert os.path.exists(world.path(f"killed-{tool}")), "the wrapper never fired"
    world.daemon()  # restart, no wrapper
    assert await client.get(MANAGER, MGR, "Pools") == []
    assert vg not in vgs()
    assert loops_under(world.base) == []
    assert not os.path.exists(world.path("c1.img")) and not os.path.exists(world.path("c2.img"))
    assert not os.path.exists(world.path(f"etc/pools/{vg}.xml"))
    # and the same CreatePool now simply works
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    assert await client.get(pool, POOL, "State") == "running"


@pytest.mark.parametrize("step", ["vgremove", "pvremove"])
async def test_kill_during_delete_rolls_forward(world, client, step):
    d = world.daemon()
    vg = f"{world.prefix}del"
    # Not autostart: the restarted daemon must find the stopped pool still stopped.
    xml = world.pool_xml(vg, ("d.img", "32M")).replace("<pool type='lvm'>", "<pool type='lvm' autostart='no'>")
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    await client.call(pool, POOL, "Stop")
    d.stop()
    world.daemon(env=killer_env(world, "lvm", step, "after"))
    await call_expecting_death(client, pool, POOL, "Delete")
    world.daemon()
    assert vg not in vgs() and loops_under(world.base) == []
    assert not os.path.exists(world.path("d.img"))
    assert await client.get(pool, POOL, "State") == "inactive"  # still defined: Delete is not Undefine


@pytest.mark.parametrize("step,when", [("pvcreate", "after"), ("vgextend", "after")])
async def test_kill_during_add_pv_rolls_back(world, client, step, when):
    d = world.daemon()
    vg = f"{world.prefix}add"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("a1.img", "32M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    d.stop()
    world.daemon(env=killer_env(world, "lvm", step, when))
    extra = world.path("a2.img")
    await call_expecting_death(client, pool, POOL, "AddPhysicalVolume", "s",
                               [f"<physical_volume type='file'><file size='32M'>{extra}</file></physical_volume>"])
    world.daemon()
    assert await client.get(pool, POOL, "State") == "running"
    assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 1
    assert not os.path.exists(extra)
    assert len(loops_under(world.base)) == 1
    assert extra not in await client.call(pool, POOL, "GetXML")


@pytest.mark.parametrize("when", ["before", "after"])
async def test_kill_during_allocate_volume_converges_to_lvm(world, client, when):
    d = world.daemon()
    vg = f"{world.prefix}alloc"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("al.img", "32M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    d.stop()
    world.daemon(env=killer_env(world, "lvm", "lvcreate", when))
    await call_expecting_death(client, pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    world.daemon()
    out = json.loads(lvm("lvs", "--reportformat", "json", "-o", "lv_name", vg).stdout)
    lvs = {lv["lv_name"] for lv in out["report"][0]["lv"]}
    assert lvs == ({"v"} if when == "after" else set())  # lvcreate commits or not, atomically
    vols = await client.get(pool, POOL, "Volumes")
    assert len(vols) == len(lvs)
    assert len(loops_under(world.base)) == 1


@pytest.mark.parametrize("step", ["vgreduce", "pvremove"])
async def test_kill_during_remove_pv_converges(world, client, step):
    d = world.daemon()
    vg = f"{world.prefix}rm"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(vg, ("r1.img", "32M"), ("r2.img", "32M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    d.stop()
    world.daemon(env=killer_env(world, "lvm", step, "after"))
    r2 = world.path("r2.img")
    try:
        await client.call(pool, POOL, "RemovePhysicalVolume", "s", [r2])  # a Job: the kill comes later
    except DBusError:
        pass
    for _ in range(100):
        if os.path.exists(world.path("killed-lvm")):
            break
        await asyncio.sleep(0.1)
    assert os.path.exists(world.path("killed-lvm"))
    await asyncio.sleep(0.5)
    world.daemon()
    # The PV was out of the VG when the daemon died: the removal is finished.
    assert await client.get(pool, POOL, "State") == "running"
    assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 1
    assert not os.path.exists(r2) and r2 not in await client.call(pool, POOL, "GetXML")
    assert len(loops_under(world.base)) == 1
