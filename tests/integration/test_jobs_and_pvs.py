"""Jobs (resize, wipe, PV removal) and pools that grow and shrink by PVs."""
import json
import os

from dbus_fast import Variant

from tests.harness import MANAGER, ROOT, subscribe, wait_for, expect_error, MGR, POOL, VOL, MiB
from tests.lvmenv import lvm, lvm_state

JOB = "org.storaged.Storaged1.Job"


async def finished(client, sig, job):
    """Wait for the Job's Completed signal; return (success, message)."""
    done = await wait_for(lambda: [m for m in sig.named("Completed", job)], timeout=30)
    assert done, f"job {job} did not complete"
    props = await client.get_all(job, JOB)
    assert props["Completed"] is True
    return done[0].body[0], done[0].body[1], props


def pvs(vg):
    out = lvm("pvs", "--reportformat", "json", "--units", "b", "--nosuffix",
              "-o", "pv_name,vg_name,pv_used", "-S", f"vg_name={vg}").stdout
    return {p["pv_name"]: int(p["pv_used"]) for p in json.loads(out)["report"][0]["pv"]}


async def test_add_and_remove_a_file_pv(world, client):
    world.daemon()
    vg = f"{world.prefix}grow"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("g1.img", "32M"))])
    assert await client.get(pool, POOL, "Capacity") == 28 * MiB
    sig = await subscribe(client)
    extra = world.path("g2.img")
    await client.call(pool, POOL, "AddPhysicalVolume", "s",
                      [f"<physical_volume type='file'><file size='32M'>{extra}</file></physical_volume>"])
    assert await client.get(pool, POOL, "Capacity") == 56 * MiB
    assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 2
    assert len(pvs(vg)) == 2
    assert extra in await client.call(pool, POOL, "GetXML")
    with open(world.path(f"etc/pools/{vg}.xml")) as f:
        assert extra in f.read()
    await expect_error("AlreadyExists", client.call(
        pool, POOL, "AddPhysicalVolume", "s",
        [f"<physical_volume type='file'><file size='32M'>{extra}</file></physical_volume>"]))

    job = await client.call(pool, POOL, "RemovePhysicalVolume", "s", [extra])
    assert job.startswith(ROOT + "/jobs/")
    ok, message, props = await finished(client, sig, job)
    assert ok, message
    assert props["Operation"].startswith("remove") and props["StartedByUID"] == 0
    assert props["Progress"] == 1.0 and props["Error"] == ""
    assert await client.get(pool, POOL, "Capacity") == 28 * MiB
    assert len(pvs(vg)) == 1
    assert not os.path.exists(extra)  # this pool created it, so it goes
    assert extra not in await client.call(pool, POOL, "GetXML")
    objs = await client.call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
    assert JOB in objs[job]
    await expect_error("InvalidArgument", client.call(job, JOB, "Cancel"))  # already done


async def test_remove_pv_refusals(world, client):
    world.daemon()
    vg = f"{world.prefix}shrink"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(vg, ("s1.img", "32M"), ("s2.img", "16M"))])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["big", 24 * MiB, {}])
    before = lvm_state()
    s1 = world.path("s1.img")
    # s1 holds 24 MiB; the other PV has 12 MiB free.
    await expect_error("NoSpace", client.call(pool, POOL, "RemovePhysicalVolume", "s", [s1]))
    await expect_error("NotFound", client.call(pool, POOL, "RemovePhysicalVolume", "s", ["/nope"]))
    assert lvm_state() == before
    solo = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}solo", ("solo.img", "16M"))])
    await expect_error("InvalidArgument", client.call(solo, POOL, "RemovePhysicalVolume", "s",
                                                      [world.path("solo.img")]))


async def test_remove_used_pv_needs_device_mapper(world, client):
    """pvmove needs device-mapper: with metadata-only LVM the call is refused and
    nothing changes (pvmove would exit 0 having moved nothing and leave a pvmove
    LV behind). The VM lab proves the real move."""
    world.daemon()
    vg = f"{world.prefix}mv"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(vg, ("m1.img", "32M"), ("m2.img", "32M"))])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["data", 8 * MiB, {}])
    used = [dev for dev, n in pvs(vg).items() if n]
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(pool, POOL, "RemovePhysicalVolume", "s", [used[0]]))
    assert "device-mapper" in msg
    assert lvm_state() == before


async def test_resize_grow_and_shrink_only_with_force(world, client):
    world.daemon()
    vg = f"{world.prefix}rs"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("rs.img", "64M"))])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["r", 8 * MiB, {}])
    sig = await subscribe(client)
    job = await client.call(vol, VOL, "Resize", "ta{sv}", [16 * MiB, {}])
    ok, message, _ = await finished(client, sig, job)
    assert ok, message
    assert await client.get(vol, VOL, "Capacity") == 16 * MiB
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(vol, VOL, "Resize", "ta{sv}", [4 * MiB, {}]))
    assert "force" in msg
    await expect_error("InvalidArgument", client.call(vol, VOL, "Resize", "ta{sv}",
                                                      [4 * MiB, {"force": Variant("s", "yes")}]))
    await expect_error("NoSpace", client.call(vol, VOL, "Resize", "ta{sv}", [1024 * MiB, {}]))
    assert lvm_state() == before
    job = await client.call(vol, VOL, "Resize", "ta{sv}", [4 * MiB, {"force": Variant("b", True)}])
    ok, message, _ = await finished(client, sig, job)
    assert ok, message
    assert await client.get(vol, VOL, "Capacity") == 4 * MiB


async def test_wipe_needs_a_device_node(world, client):
    world.daemon()
    vg = f"{world.prefix}wp"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("wp.img", "16M"))])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["w", 4 * MiB, {}])
    msg = await expect_error("Failed", client.call(vol, VOL, "Wipe"))
    assert "device node" in msg
