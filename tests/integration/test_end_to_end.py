"""The whole flow through the public D-Bus API, against real LVM, real loop
devices, a real dbus-daemon with the project's policy, and the daemon started
as systemd would start it."""
import asyncio
import json
import os
import signal

import pytest
from dbus_fast import DBusError, Message, Variant

from tests.harness import MANAGER, ROOT, busctl, subscribe, wait_for, expect_error, MGR, POOL, VOL, MiB
from tests.lvmenv import loops_under, lvm, lvm_state


def vgs():
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_name,lv_count").stdout
    return {v["vg_name"]: int(v["lv_count"]) for v in json.loads(out)["report"][0]["vg"]}


def lvs(vg):
    out = lvm("lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
              "-o", "lv_name,lv_uuid,lv_size", vg).stdout
    return {lv["lv_name"]: lv for lv in json.loads(out)["report"][0]["lv"]}


async def test_default_pool_created_on_first_start_and_autostarted(world, client):
    d = world.daemon(default_pool=True)
    assert any("READY=1" in n for n in d.notifications)
    path = await client.call(MANAGER, MGR, "LookupPool", "s", ["default"])
    props = await client.get_all(path, POOL)
    assert props["State"] == "running", props
    assert props["Autostart"] is True
    assert props["VolumeGroup"] == f"{world.prefix}_vg_default"
    assert props["Capacity"] == 60 * MiB  # 64 MiB less metadata, in 4 MiB extents
    assert f"{world.prefix}_vg_default" in vgs()
    image = world.path("lib/images/default.img")
    assert os.path.getsize(image) == 64 * MiB
    assert os.stat(image).st_blocks * 512 < 8 * MiB  # sparse
    assert len(loops_under(world.base)) == 1
    assert await client.call(MANAGER, MGR, "LookupPool", "s", ["default"]) == path


async def test_create_pool_allocate_resolve_and_deallocate(world, client):
    world.daemon()
    sig = await subscribe(client)
    name = f"{world.prefix}test"
    xml = world.pool_xml(name, ("test-storage.img", "20971520"))
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    assert pool.startswith(ROOT + "/pools/")
    props = await client.get_all(pool, POOL)
    assert props["Name"] == name and props["State"] == "running"
    assert props["VolumeGroup"] == name
    assert props["Capacity"] == 16 * MiB  # 20 MiB less LVM's metadata, in 4 MiB extents
    assert vgs() == {name: 0}
    assert os.path.getsize(world.path("test-storage.img")) == 20971520
    assert pool in await client.get(MANAGER, MGR, "Pools")
    assert await wait_for(lambda: sig.named("InterfacesAdded", ROOT))

    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["TestVolume", 5 * MiB, {}])
    assert vol.startswith(pool + "/volumes/")
    v = await client.get_all(vol, VOL)
    lv = lvs(name)["TestVolume"]
    assert v["Name"] == "TestVolume" and v["Path"] == f"/dev/{name}/TestVolume"
    assert v["UUID"] == lv["lv_uuid"] and v["Capacity"] == int(lv["lv_size"]) == 8 * MiB
    assert v["Pool"] == pool
    assert await client.get(pool, POOL, "Available") == 8 * MiB
    assert await client.get(pool, POOL, "Volumes") == [vol]
    assert await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "TestVolume"]) == vol

    added = await wait_for(lambda: [m for m in sig.named("InterfacesAdded", ROOT) if m.body[0] == vol])
    assert added and added[0].body[1][VOL]["Name"].value == "TestVolume"
    changed = await wait_for(lambda: [m for m in sig.named("PropertiesChanged", pool)
                                      if "Available" in m.body[1]])
    assert changed[-1].body[1]["Available"].value == 8 * MiB

    disk = ("<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
            "<source volume='TestVolume'/><target dev='hda'/></disk>")
    out = await client.call(MANAGER, MGR, "ResolveDisk", "s", [disk])
    assert out == (f'<disk type="block" device="disk"><driver name="qemu" type="raw"/>'
                   f'<source dev="/dev/{name}/TestVolume"/><target dev="hda"/></disk>')
    with_pool = disk.replace("volume='TestVolume'", f"volume='TestVolume' pool='{name}'")
    assert f"/dev/{name}/TestVolume" in await client.call(MANAGER, MGR, "ResolveDisk", "s", [with_pool])

    await client.call(pool, POOL, "DeallocateVolume", "s", ["TestVolume"])
    assert lvs(name) == {}
    assert await client.get(pool, POOL, "Volumes") == []
    assert await wait_for(lambda: [m for m in sig.named("InterfacesRemoved", ROOT) if m.body[0] == vol])
    with pytest.raises(DBusError, match="could not be found"):
        await client.call(vol, VOL, "GetXML")  # the object is gone


async def test_create_volume_xml_declared_volumes_and_volume_delete(world, client):
    world.daemon()
    name = f"{world.prefix}decl"
    volumes = ("<volume><name>v1</name><capacity unit='M'>4</capacity></volume>"
               "<volume><name>v2</name><capacity>8388608</capacity></volume>")
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(name, ("d.img", "32M"), volumes=volumes)])
    assert set(lvs(name)) == {"v1", "v2"}
    assert len(await client.get(pool, POOL, "Volumes")) == 2
    vol = await client.call(pool, POOL, "CreateVolume", "s",
                            ["<volume><name>v3</name><capacity unit='KiB'>4096</capacity></volume>"])
    assert await client.get(vol, VOL, "Capacity") == 4 * MiB
    xml = await client.call(vol, VOL, "GetXML")
    assert "<name>v3</name>" in xml and 'unit="bytes">4194304<' in xml
    await client.call(vol, VOL, "Delete")
    assert set(lvs(name)) == {"v1", "v2"}


async def test_busctl_flow(world):
    world.daemon()
    a = world.address
    name = f"{world.prefix}bc"
    xml = world.pool_xml(name, ("bc.img", "16M"))
    r = busctl(a, "--json=short", "call", "org.storaged.Storaged1", MANAGER, MGR, "CreatePool", "s", xml)
    assert r.returncode == 0, r.stderr
    pool = json.loads(r.stdout)["data"][0]
    r = busctl(a, "--json=short", "call", "org.storaged.Storaged1", pool, POOL,
               "AllocateVolume", "sta{sv}", "bv", str(4 * MiB), "0")
    assert r.returncode == 0, r.stderr
    vol = json.loads(r.stdout)["data"][0]
    r = busctl(a, "--json=short", "get-property", "org.storaged.Storaged1", vol, VOL, "Path")
    assert json.loads(r.stdout)["data"] == f"/dev/{name}/bv"
    r = busctl(a, "call", "org.storaged.Storaged1", pool, POOL, "AllocateVolume", "sta{sv}",
               "bad/name", "4096", "0")
    assert r.returncode != 0 and "may only contain" in r.stderr
    r = busctl(a, "tree", "org.storaged.Storaged1")
    assert vol in r.stdout


async def test_lifecycle_define_build_start_stop_delete_undefine(world, client):
    world.daemon()
    name = f"{world.prefix}life"
    img = world.path("life.img")
    pool = await client.call(MANAGER, MGR, "DefinePool", "s", [world.pool_xml(name, ("life.img", "16M"))])
    assert await client.get(pool, POOL, "State") == "inactive"
    assert not os.path.exists(img) and name not in vgs()
    assert os.path.exists(world.path(f"etc/pools/{name}.xml"))
    await client.call(pool, POOL, "Build")
    with open(img, "rb") as f:
        assert f.read(1024)[512:520] == b"LABELONE"  # an LVM PV label
    assert loops_under(world.base) == []  # build of an inactive pool leaves it down
    await client.call(pool, POOL, "Start")
    assert await client.get(pool, POOL, "State") == "running"
    assert name in vgs()
    await client.call(pool, POOL, "Start")  # idempotent
    assert len(loops_under(world.base)) == 1
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["x", MiB, {}])
    await expect_error("Busy", client.call(pool, POOL, "Delete"))
    await expect_error("Busy", client.call(pool, POOL, "Undefine"))
    await client.call(pool, POOL, "Stop")
    assert await client.get(pool, POOL, "State") == "inactive"
    assert await client.get(pool, POOL, "Volumes") == []
    assert loops_under(world.base) == []
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    assert await client.get(pool, POOL, "Autostart") is True
    assert os.path.exists(world.path(f"etc/pools/autostart/{name}"))
    await client.call(pool, POOL, "Delete")
    assert not os.path.exists(img) and name not in vgs() and loops_under(world.base) == []
    await client.call(pool, POOL, "Undefine")
    assert not os.path.exists(world.path(f"etc/pools/{name}.xml"))
    await expect_error("NotFound", client.call(MANAGER, MGR, "LookupPool", "s", [name]))
    assert await client.get(MANAGER, MGR, "Pools") == []


async def test_state_changes_are_signalled(world, client):
    """A client that only follows PropertiesChanged sees the State a Get returns."""
    world.daemon()
    sig = await subscribe(client)
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}sig", ("sig.img", "16M"))])

    def last_state():
        states = [m.body[1]["State"].value for m in sig.named("PropertiesChanged", pool)
                  if "State" in m.body[1]]
        return states[-1] if states else None

    assert await wait_for(lambda: last_state() == "running"), last_state()
    for method, state in (("Stop", "inactive"), ("Start", "running")):
        await client.call(pool, POOL, method)
        assert await wait_for(lambda: last_state() == state), (method, last_state())
        assert await client.get(pool, POOL, "State") == state


async def test_stop_waits_until_a_held_loop_device_lets_go(world, client):
    """losetup --detach of an open loop device only schedules the detach; Stop
    returns once the kernel has let go of the file, not before (an NFS export
    under the file could not be unmounted otherwise)."""
    world.daemon()
    name = f"{world.prefix}held"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("held.img", "16M"))])
    [loop] = loops_under(world.base)
    holder = [os.open(loop, os.O_RDONLY)]  # as udev's probe does, briefly

    def let_go():
        if holder:
            os.close(holder.pop())
    loop_ = asyncio.get_running_loop()
    loop_.call_later(1.0, let_go)
    start = loop_.time()
    try:
        await client.call(pool, POOL, "Stop")
    finally:
        let_go()
    assert loop_.time() - start >= 0.9
    assert loops_under(world.base) == []
    assert not os.path.exists(f"/sys/block/{os.path.basename(loop)}/loop")
    await client.call(pool, POOL, "Delete")


async def test_getxml_round_trip_every_form(world, client):
    world.daemon()
    forms = [
        world.pool_xml(f"{world.prefix}a", ("a.img", "20971520")),
        world.pool_xml(f"{world.prefix}b", ("b1.img", "10M"), ("b2.img", "1GiB"), vg=f"{world.prefix}vgb",
                       volumes="<volume><name>TestVolume</name><capacity unit='G'>2</capacity></volume>"),
        f"<pool type='lvm'><name>{world.prefix}c</name><volume_group>{world.prefix}existing</volume_group></pool>",
        f"<pool type='lvm'><name>{world.prefix}d</name><physical_volume type='device'>"
        f"<device>/dev/disk/by-id/{world.prefix}-disk</device></physical_volume></pool>",
        f"<pool type='lvm'><name>{world.prefix}e</name><physical_volume type='iscsi'>"
        f"<host port='3260'>192.0.2.10</host><target>iqn.2007-01.org.example:store</target>"
        f"<lun>1</lun></physical_volume></pool>",
        f"<pool type='lvm'><name>{world.prefix}f</name><physical_volume type='nfs'>"
        f"<server>filer.example</server><export>/exports/pools</export>"
        f"<file size='50G'>pool-a.img</file></physical_volume></pool>",
    ]
    for xml in forms:
        pool = await client.call(MANAGER, MGR, "DefinePool", "s", [xml])
        first = await client.call(pool, POOL, "GetXML")
        await client.call(pool, POOL, "Undefine")
        again = await client.call(MANAGER, MGR, "DefinePool", "s", [first])
        assert again == pool  # same UUID, same object path
        assert await client.call(again, POOL, "GetXML") == first
    assert vgs() == {}  # defining touches no storage


async def test_named_errors_change_nothing(world, client):
    world.daemon()
    name = f"{world.prefix}err"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("e.img", "16M"))])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["keep", 4 * MiB, {}])
    before = lvm_state()
    files_before = sorted(os.listdir(world.base))

    msg = await expect_error("InvalidArgument", client.call(MANAGER, MGR, "DefinePool", "s",
                                                            ["<pool type='lvm'><name>x</name>"]))
    assert "line" in msg
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "DefinePool", "s", ["<pool type='lvm'><name>x</name><physical_volume type='file'>"
                                          "<file size='12Q'>/tmp/x.img</file></physical_volume></pool>"]))
    assert "size" in msg and "12Q" in msg
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "DefinePool", "s", ["<pool type='lvm'><name>-bad</name></pool>"]))
    assert "pool name" in msg
    await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "DefinePool", "s", ["<pool type='lvm'><name>x</name><physical_volume type='file'>"
                                          "<file size='1M'>relative.img</file></physical_volume></pool>"]))
    await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "DefinePool", "s",
        ['<!DOCTYPE p [<!ENTITY x "y">]><pool type="lvm"><name>&x;</name></pool>']))
    await expect_error("InvalidArgument", client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 0, {}]))
    await expect_error("InvalidArgument", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                      ["snapshot1", MiB, {}]))
    await expect_error("InvalidArgument", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                      ["a/b", MiB, {}]))
    await expect_error("InvalidArgument", client.call(pool, POOL, "CreateVolume", "s",
                                                      ["<volume><name>v</name><capacity>lots</capacity></volume>"]))
    await expect_error("InvalidArgument", client.call(MANAGER, MGR, "ResolveDisk", "s", ["<disk type='file'/>"]))
    await expect_error("NotFound", client.call(MANAGER, MGR, "LookupPool", "s", ["nope"]))
    await expect_error("NotFound", client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "nope"]))
    await expect_error("NotFound", client.call(pool, POOL, "DeallocateVolume", "s", ["nope"]))
    await expect_error("NotFound", client.call(
        MANAGER, MGR, "ResolveDisk", "s", ["<disk type='volume'><source volume='nope'/></disk>"]))
    await expect_error("AlreadyExists", client.call(MANAGER, MGR, "DefinePool", "s",
                                                    [world.pool_xml(name, ("other.img", "16M"))]))
    await expect_error("AlreadyExists", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                    ["keep", MiB, {}]))
    msg = await expect_error("NoSpace", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                    ["big", 64 * MiB, {}]))
    assert "available" in msg
    await expect_error("Busy", client.call(pool, POOL, "Undefine"))
    await expect_error("InvalidArgument", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                      ["v", MiB, {"bogus": Variant("i", 1)}]))
    assert lvm_state() == before
    assert sorted(os.listdir(world.base)) == files_before
    assert await client.call(MANAGER, MGR, "LookupPool", "s", [name]) == pool


async def test_existing_file_is_never_overwritten(world, client):
    world.daemon()
    victim = world.path("precious.img")
    with open(victim, "wb") as f:
        f.write(b"precious data" * 1000)
    before = lvm_state()
    xml = world.pool_xml(f"{world.prefix}ow", ("precious.img", "16M"))
    msg = await expect_error("AlreadyExists", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert "precious.img" in msg
    with open(victim, "rb") as f:
        assert f.read() == b"precious data" * 1000
    assert lvm_state() == before and loops_under(world.base) == []
    assert await client.get(MANAGER, MGR, "Pools") == []  # CreatePool left no definition


async def test_lvm_failure_is_failed_with_lvms_message(world, client):
    world.daemon()
    img = world.path("ro.img")
    with open(img, "wb") as f:
        f.truncate(16 * MiB)
    import subprocess
    dev = subprocess.run(["losetup", "--find", "--show", "--read-only", img],
                         capture_output=True, text=True, check=True).stdout.strip()
    before = lvm_state()
    xml = (f"<pool type='lvm'><name>{world.prefix}ro</name><physical_volume type='device'>"
           f"<device>{dev}</device></physical_volume></pool>")
    msg = await expect_error("Failed", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert "LVM says" in msg and "pvcreate" in msg
    assert lvm_state() == before
    assert await client.get(MANAGER, MGR, "Pools") == []


async def test_reboot_brings_pools_and_volumes_back(world, client):
    d = world.daemon()
    name = f"{world.prefix}boot"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(name, ("boot1.img", "16M"), ("boot2.img", "16M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["keep", 20 * MiB, {}])
    other = await client.call(MANAGER, MGR, "CreatePool", "s",
                              [world.pool_xml(f"{world.prefix}gone", ("gone.img", "16M"))])
    await client.call(other, POOL, "SetAutostart", "b", [True])
    manual_xml = world.pool_xml(f"{world.prefix}manual", ("manual.img", "16M"))
    noauto = await client.call(MANAGER, MGR, "CreatePool", "s",  # opted out of autostart
                               [manual_xml.replace("<pool type='lvm'>", "<pool type='lvm' autostart='no'>")])

    # Power off: the daemon goes, the loop devices go; one file is lost too.
    assert d.stop() == 0
    for dev in loops_under(world.base):
        import subprocess
        subprocess.run(["losetup", "--detach", dev], check=True)
    os.unlink(world.path("gone.img"))
    # Something else took loop numbers meanwhile, so re-attachment lands elsewhere.
    world.daemon()

    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(pool, POOL, "Volumes") == [vol]
    assert await client.get(vol, VOL, "Name") == "keep"
    assert await client.get(vol, VOL, "Capacity") == 20 * MiB
    assert len(loops_under(world.base)) == 2
    state = await client.get(other, POOL, "State")
    reason = await client.get(other, POOL, "StateReason")
    assert state == "degraded" and "gone.img" in reason, (state, reason)
    assert await client.get(noauto, POOL, "State") == "inactive"
    # The degraded pool does not stop the others from being served.
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["more", 4 * MiB, {}])
    assert set(lvs(name)) == {"keep", "more"}


async def test_boot_reuses_existing_loop_binding(world, client):
    d = world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}re", ("re.img", "16M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    loops = loops_under(world.base)
    d.stop()
    world.daemon()
    assert loops_under(world.base) == loops
    assert await client.get(pool, POOL, "State") == "running"


async def test_sigterm_releases_name_and_exits_zero(world, client):
    d = world.daemon()
    reply = await client.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                          interface="org.freedesktop.DBus", member="NameHasOwner",
                                          signature="s", body=["org.storaged.Storaged1"]))
    assert reply.body == [True]
    assert d.stop(signal.SIGTERM) == 0
    reply = await client.bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                                          interface="org.freedesktop.DBus", member="NameHasOwner",
                                          signature="s", body=["org.storaged.Storaged1"]))
    assert reply.body == [False]


async def test_unprivileged_caller_reads_but_cannot_change(world, client):
    world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}np", ("np.img", "16M"))])
    a = world.address
    before = lvm_state()
    r = busctl(a, "get-property", "org.storaged.Storaged1", pool, POOL, "State", user="nobody")
    assert r.returncode == 0 and "running" in r.stdout, r.stderr
    r = busctl(a, "call", "org.storaged.Storaged1", ROOT, "org.freedesktop.DBus.ObjectManager",
               "GetManagedObjects", user="nobody")
    assert r.returncode == 0 and pool in r.stdout, r.stderr
    r = busctl(a, "introspect", "org.storaged.Storaged1", pool, user="nobody")
    assert r.returncode == 0 and "AllocateVolume" in r.stdout
    for args in (["AllocateVolume", "sta{sv}", "v", "4096", "0"], ["Stop"], ["Delete"]):
        r = busctl(a, "call", "org.storaged.Storaged1", pool, POOL, *args, user="nobody")
        assert r.returncode != 0 and "Access denied" in r.stderr or "AccessDenied" in r.stderr, r.stderr
    r = busctl(a, "call", "org.storaged.Storaged1", MANAGER, MGR, "DefinePool", "s",
               "<pool type='lvm'><name>z</name></pool>", user="nobody")
    assert r.returncode != 0
    assert lvm_state() == before


async def test_get_managed_objects_lists_everything(world, client):
    world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}om", ("om.img", "16M"))])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", MiB, {}])
    objs = await client.call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
    assert objs[MANAGER][MGR]["Pools"].value == [pool]
    assert objs[pool][POOL]["Name"].value == f"{world.prefix}om"
    assert objs[vol][VOL]["Path"].value == f"/dev/{world.prefix}om/v"
