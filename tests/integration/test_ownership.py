"""Never destroy what a pool did not create, and a pool that is up is served as
up after the daemon restarts, however it stopped (defects found trying storaged
as an admin; each test failed before its fix)."""
import json
import os
import signal
import subprocess

from tests.harness import MANAGER, MGR, POOL, VOL, MiB, expect_error
from tests.integration.test_device_pvs import device_pool, disk
from tests.lvmenv import loops_under, lvm, lvm_state


def lv_names(vg):
    out = lvm("lvs", "--reportformat", "json", "-o", "lv_name", vg).stdout
    return sorted(lv["lv_name"] for lv in json.loads(out)["report"][0]["lv"])


def outside_vg(world, name, *lvs):
    """A VG an admin made with plain lvm commands, holding their LVs."""
    dev = disk(world, f"{name}.disk")
    lvm("pvcreate", "--yes", dev)
    lvm("vgcreate", name, dev)
    for lv in lvs:
        lvm("lvcreate", "--yes", "-n", lv, "-L", "4m", name)
    return dev


async def test_build_never_adds_a_pv_to_a_vg_it_did_not_create(world, client):
    world.daemon()
    vg = f"{world.prefix}outvg"
    outside_vg(world, vg, "precious")
    before = lvm_state()
    # The pool's name is the VG's (the VG name defaults to the pool name).
    xml = world.pool_xml(vg, ("p.img", "16M"))
    msg = await expect_error("AlreadyExists", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert f"volume group {vg!r} already exists (1 logical volume(s))" in msg
    assert "<volume_group>" in msg  # says how to adopt it instead
    assert lvm_state() == before and lv_names(vg) == ["precious"]
    assert not os.path.exists(world.path("p.img"))
    assert len(loops_under(world.base)) == 1  # the admin's disk only
    assert await client.get(MANAGER, MGR, "Pools") == []
    pool = await client.call(MANAGER, MGR, "DefinePool", "s", [xml])
    await expect_error("AlreadyExists", client.call(pool, POOL, "Build"))
    assert lvm_state() == before and not os.path.exists(world.path("p.img"))


async def test_delete_refuses_an_adopted_vg_and_undefine_leaves_it(world, client):
    world.daemon()
    vg = f"{world.prefix}adopt"
    outside_vg(world, vg, "precious")
    pool = await client.call(MANAGER, MGR, "DefinePool", "s", [
        f"<pool type='lvm'><name>{world.prefix}a</name><volume_group>{vg}</volume_group></pool>"])
    await client.call(pool, POOL, "Build")  # adopting: nothing to build, nothing refused
    await client.call(pool, POOL, "Start")
    assert await client.get(pool, POOL, "State") == "running"
    await client.call(pool, POOL, "Stop")
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(pool, POOL, "Delete"))
    assert f"did not create volume group {vg!r}" in msg and "Undefine" in msg
    assert lvm_state() == before and lv_names(vg) == ["precious"]
    await client.call(pool, POOL, "Undefine")
    assert lv_names(vg) == ["precious"]


async def test_delete_refuses_volumes_storaged_did_not_allocate(world, client):
    world.daemon()
    name = f"{world.prefix}own"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("own.img", "32M"))])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["mine", 4 * MiB, {}])
    lvm("lvcreate", "--yes", "-n", "admins", "-L", "4m", name)
    await client.call(pool, POOL, "Stop")
    msg = await expect_error("Busy", client.call(pool, POOL, "Delete"))
    assert "admins" in msg and "mine" not in msg and "did not allocate" in msg
    assert os.path.exists(world.path("own.img")) and loops_under(world.base) == []
    await client.call(pool, POOL, "Start")
    assert lv_names(name) == ["admins", "mine"]
    await client.call(pool, POOL, "DeallocateVolume", "s", ["admins"])
    await client.call(pool, POOL, "Stop")
    await client.call(pool, POOL, "Delete")
    assert not os.path.exists(world.path("own.img"))


async def restart_keeps_up_pools_up(world, client, sig):
    d = world.daemon()
    s1 = await client.call(MANAGER, MGR, "CreatePool", "s",
                           [world.pool_xml(f"{world.prefix}s1", ("s1.img", "16M"))])
    s2 = await client.call(MANAGER, MGR, "CreatePool", "s",
                           [world.pool_xml(f"{world.prefix}s2", ("s2.img", "16M"))])
    s3 = await client.call(MANAGER, MGR, "CreatePool", "s",
                           [world.pool_xml(f"{world.prefix}s3", ("s3.img", "16M"))])
    dev = disk(world, "s4.disk")
    s4 = await client.call(MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}s4", dev)])
    await client.call(s1, POOL, "SetAutostart", "b", [True])
    for p in (s2, s3, s4):
        await client.call(p, POOL, "SetAutostart", "b", [False])
    v2 = await client.call(s2, POOL, "AllocateVolume", "sta{sv}", ["guest", 4 * MiB, {}])
    v4 = await client.call(s4, POOL, "AllocateVolume", "sta{sv}", ["guest4", 4 * MiB, {}])
    await client.call(s3, POOL, "Stop")  # really down: must stay inactive
    loops = sorted(loops_under(world.base))
    d.stop(sig)
    world.daemon()
    for p in (s1, s2, s4):
        assert await client.get(p, POOL, "State") == "running", p
    assert await client.get(s3, POOL, "State") == "inactive"
    assert await client.get(s2, POOL, "Volumes") == [v2]
    assert await client.get(s4, POOL, "Volumes") == [v4]
    assert sorted(loops_under(world.base)) == loops  # reused, none attached twice
    disk_xml = f"<disk type='volume'><source volume='guest' pool='{world.prefix}s2'/></disk>"
    assert f"/dev/{world.prefix}s2/guest" in await client.call(MANAGER, MGR, "ResolveDisk", "s", [disk_xml])
    await expect_error("Busy", client.call(s2, POOL, "Delete"))
    assert lv_names(f"{world.prefix}s2") == ["guest"]
    # Stop really stops it (it used to say "stopped" and do nothing).
    await client.call(s2, POOL, "Stop")
    assert not any(open(f"/sys/block/{d[5:]}/loop/backing_file").read().strip().endswith("/s2.img")
                   for d in loops_under(world.base))


async def test_sigterm_keeps_running_pools_running_autostart_or_not(world, client):
    await restart_keeps_up_pools_up(world, client, signal.SIGTERM)


async def test_sigkill_keeps_running_pools_running_autostart_or_not(world, client):
    await restart_keeps_up_pools_up(world, client, signal.SIGKILL)


async def test_reboot_leaves_non_autostart_pools_down(world, client):
    """A simulated reboot (loops detached) of a pool that is not autostart: it
    is really down, so it is inactive, and Start brings it back."""
    d = world.daemon()
    pool = await client.call(MANAGER, MGR, "DefinePool", "s",
                             [world.pool_xml(f"{world.prefix}r", ("r.img", "16M"))])
    await client.call(pool, POOL, "Build")
    await client.call(pool, POOL, "Start")
    d.stop()
    for loop in loops_under(world.base):
        subprocess.run(["losetup", "--detach", loop], check=True)
    world.daemon()
    assert await client.get(pool, POOL, "State") == "inactive"
    assert loops_under(world.base) == []
    await client.call(pool, POOL, "Start")
    assert await client.get(pool, POOL, "State") == "running"


async def test_build_of_a_built_pool_is_a_no_op_and_a_failed_build_detaches(world, client):
    d = world.daemon()
    name = f"{world.prefix}bb"
    pool = await client.call(MANAGER, MGR, "DefinePool", "s",
                             [world.pool_xml(name, ("a.img", "16M"), ("b.img", "16M"))])
    await client.call(pool, POOL, "Build")
    before = lvm_state()
    await client.call(pool, POOL, "Build")
    assert lvm_state() == before and loops_under(world.base) == []
    assert f"pool {name} is already built: nothing to do" in d.log()
    # b.img replaced by a file too small for a PV: Build fails, and detaches a.img again.
    os.unlink(world.path("b.img"))
    with open(world.path("b.img"), "wb") as f:
        f.truncate(MiB)
    await expect_error("Failed", client.call(pool, POOL, "Build"))
    assert loops_under(world.base) == []
    assert os.path.exists(world.path("a.img")) and os.path.exists(world.path("b.img"))
    assert await client.get(pool, POOL, "State") == "inactive"
