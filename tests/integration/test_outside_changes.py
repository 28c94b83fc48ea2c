"""LVM is the source of truth: changes made with plain lvm, losetup and rm while
the daemon runs show up on the bus within a second, with the right signals."""
import asyncio
import json
import os
import subprocess
import time

from tests.harness import MANAGER, ROOT, subscribe, wait_for, MGR, POOL, VOL, MiB
from tests.lvmenv import lvm

PROPS = "org.freedesktop.DBus.Properties"
WITHIN = 1.0  # seconds: the promise


def lvs(vg):
    out = lvm("lvs", "--reportformat", "json", "--units", "b", "--nosuffix",
              "-o", "lv_name,lv_uuid,lv_size", vg).stdout
    return {lv["lv_uuid"]: lv for lv in json.loads(out)["report"][0]["lv"]}


async def make_pool(world, client, name="oob", files=(("oob.img", "64M"),)):
    vg = f"{world.prefix}{name}"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, *files)])
    return vg, pool


def vol_path(pool, lv_uuid):
    return f"{pool}/volumes/{lv_uuid.replace('-', '_')}"


async def within(predicate, limit=WITHIN):
    """Wait for predicate; return the seconds it took, failing past the promise."""
    t = time.monotonic()
    value = await wait_for(predicate, timeout=limit + 2)
    took = time.monotonic() - t
    assert value, f"not seen within {limit + 2} s"
    assert took <= limit, f"seen after {took:.2f} s, promised {limit} s"
    return value


def changed_props(sig, path):
    return [set(m.body[1]) for m in sig.named("PropertiesChanged", path)]


async def test_outside_lvcreate_lvrename_lvresize_lvremove(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    sig = await subscribe(client)

    lvm("lvcreate", "--yes", "-n", "admin", "-L", "8m", vg)
    uuid = next(iter(lvs(vg)))
    path = vol_path(pool, uuid)
    added = await within(lambda: [m for m in sig.named("InterfacesAdded", ROOT) if m.body[0] == path])
    assert added[0].body[1][VOL]["Name"].value == "admin"
    assert await client.get(pool, POOL, "Volumes") == [path]
    assert await client.get(pool, POOL, "Available") == 64 * MiB - 4 * MiB - 8 * MiB

    sig.seen.clear()
    lvm("lvrename", vg, "admin", "renamed")
    await within(lambda: changed_props(sig, path))
    assert changed_props(sig, path) == [{"Name", "Path"}]  # exactly what changed
    assert await client.get(path, VOL, "Name") == "renamed"
    assert await client.get(path, VOL, "Path") == f"/dev/{vg}/renamed"
    assert await client.call(MANAGER, MGR, "LookupVolume", "ss", [vg, "renamed"]) == path
    assert not sig.named("InterfacesRemoved") and not sig.named("InterfacesAdded")

    sig.seen.clear()
    lvm("lvextend", "-L", "16m", f"{vg}/renamed")
    await within(lambda: changed_props(sig, path))
    assert changed_props(sig, path) == [{"Capacity"}]
    assert await client.get(path, VOL, "Capacity") == 16 * MiB
    await within(lambda: [p for p in changed_props(sig, pool) if "Available" in p])
    assert await client.get(pool, POOL, "Available") == 64 * MiB - 4 * MiB - 16 * MiB

    sig.seen.clear()
    lvm("lvremove", "--yes", f"{vg}/renamed")
    await within(lambda: [m for m in sig.named("InterfacesRemoved", ROOT) if m.body[0] == path])
    assert await client.get(pool, POOL, "Volumes") == []


async def test_outside_vgextend_vgreduce(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    extra = world.path("extra.img")
    with open(extra, "wb") as f:
        f.truncate(32 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", extra], capture_output=True, text=True,
                         check=True).stdout.strip()
    sig = await subscribe(client)
    lvm("vgextend", vg, dev)
    await within(lambda: [p for p in changed_props(sig, pool) if "PhysicalVolumes" in p])
    assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 2
    assert dev in await client.get(pool, POOL, "PhysicalVolumes")
    assert await client.get(pool, POOL, "Capacity") == 60 * MiB + 28 * MiB
    sig.seen.clear()
    lvm("vgreduce", vg, dev)
    await within(lambda: [p for p in changed_props(sig, pool) if "PhysicalVolumes" in p])
    assert dev not in await client.get(pool, POOL, "PhysicalVolumes")
    assert await client.get(pool, POOL, "Capacity") == 60 * MiB


async def test_outside_vgrename_is_followed_and_stored(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    sig = await subscribe(client)
    lvm("vgrename", vg, f"{vg}new")
    await within(lambda: [p for p in changed_props(sig, pool) if "VolumeGroup" in p])
    assert await client.get(pool, POOL, "VolumeGroup") == f"{vg}new"
    assert await client.get(pool, POOL, "State") == "running"
    await within(lambda: changed_props(sig, vol))
    assert await client.get(vol, VOL, "Path") == f"/dev/{vg}new/v"
    assert f"<volume_group>{vg}new</volume_group>" in await client.call(pool, POOL, "GetXML")
    with open(world.path(f"etc/pools/{vg}.xml")) as f:
        assert f"<volume_group>{vg}new</volume_group>" in f.read()
    # and the pool still works under its new VG name
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["w", 4 * MiB, {}])
    assert {lv["lv_name"] for lv in lvs(f"{vg}new").values()} == {"v", "w"}


async def test_outside_vgremove_fails_the_pool(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    sig = await subscribe(client)
    lvm("vgremove", "--yes", "--force", vg)
    await within(lambda: [p for p in changed_props(sig, pool) if "State" in p])
    assert await client.get(pool, POOL, "State") == "failed"
    assert "not found" in await client.get(pool, POOL, "StateReason")
    assert [m for m in sig.named("InterfacesRemoved", ROOT) if m.body[0] == vol]


async def test_detached_loop_degrades_and_reattached_recovers(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client, files=(("a.img", "32M"), ("b.img", "32M")))
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    sig = await subscribe(client)
    b = world.path("b.img")
    dev = subprocess.run(["losetup", "--associated", b, "--output", "NAME", "--noheadings"],
                         capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["losetup", "--detach", dev], check=True)
    await within(lambda: [p for p in changed_props(sig, pool) if "State" in p])
    assert await client.get(pool, POOL, "State") == "degraded"
    reason = await client.get(pool, POOL, "StateReason")
    assert b in reason and "not attached" in reason, reason
    assert await client.get(vol, VOL, "Name") == "v"  # the volume is still there

    sig.seen.clear()
    subprocess.run(["losetup", "--find", b], check=True)
    await within(lambda: [p for p in changed_props(sig, pool) if "State" in p])
    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(pool, POOL, "StateReason") == ""


async def test_deleted_file_degrades_single_pv_pool(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    img = world.path("oob.img")
    sig = await subscribe(client)
    dev = subprocess.run(["losetup", "--associated", img, "--output", "NAME", "--noheadings"],
                         capture_output=True, text=True, check=True).stdout.split()[0]
    subprocess.run(["losetup", "--detach", dev], check=True)
    os.rename(img, img + ".moved")
    await within(lambda: [p for p in changed_props(sig, pool) if "State" in p])
    assert await client.get(pool, POOL, "State") == "degraded"
    assert f"{img} is missing" in await client.get(pool, POOL, "StateReason")
    assert await client.get(pool, POOL, "Volumes") == [vol]
    sig.seen.clear()
    os.rename(img + ".moved", img)
    subprocess.run(["losetup", "--find", img], check=True)
    await within(lambda: [p for p in changed_props(sig, pool) if "State" in p])
    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(pool, POOL, "Volumes") == [vol]


async def test_own_changes_are_signalled_once(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client)
    sig = await subscribe(client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["mine", 4 * MiB, {}])
    await asyncio.sleep(1.5)  # every event source has fired by now
    assert len([m for m in sig.named("InterfacesAdded", ROOT) if m.body[0] == vol]) == 1
    assert len([p for p in changed_props(sig, pool) if "Volumes" in p]) == 1
    assert len([p for p in changed_props(sig, pool) if "Available" in p]) == 1
    assert changed_props(sig, vol) == []
    sig.seen.clear()
    await client.call(pool, POOL, "DeallocateVolume", "s", ["mine"])
    await asyncio.sleep(1.5)
    assert len([m for m in sig.named("InterfacesRemoved", ROOT) if m.body[0] == vol]) == 1
    assert len([p for p in changed_props(sig, pool) if "Volumes" in p]) == 1


async def test_storm_of_outside_lvcreates_converges_to_lvs(world, client):
    world.daemon()
    vg, pool = await make_pool(world, client, files=(("storm.img", "1G"),))
    for i in range(200):
        lvm("lvcreate", "--yes", "-n", f"s{i}", "-L", "4m", vg)
    truth = {vol_path(pool, u) for u in lvs(vg)}
    assert len(truth) == 200

    async def current():
        return set(await client.get(pool, POOL, "Volumes"))
    deadline = time.monotonic() + 5
    while await current() != truth and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert await current() == truth
    objs = await client.call(ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
    names = {objs[p][VOL]["Name"].value for p in truth}
    assert names == {f"s{i}" for i in range(200)}
    assert await client.get(pool, POOL, "Available") == 1024 * MiB - 4 * MiB - 200 * 4 * MiB


async def test_changes_seen_without_lvm_backups(world, client):
    """The floor: with LVM's backups off there is no file to watch; the PV
    metadata fingerprint still notices within a second."""
    conf = os.path.join(os.environ["LVM_SYSTEM_DIR"], "lvm.conf")
    with open(conf, "a") as f:
        f.write("backup {\n    backup = 0\n    archive = 0\n}\n")
    world.daemon()
    vg, pool = await make_pool(world, client)
    sig = await subscribe(client)
    lvm("lvcreate", "--yes", "-n", "quiet", "-L", "4m", vg)
    await within(lambda: sig.named("InterfacesAdded", ROOT))
    assert await client.call(MANAGER, MGR, "LookupVolume", "ss", [vg, "quiet"])


async def test_with_lvm_backups_off_allocate_runs_no_second_lvm_command(world, client):
    """Where LVM keeps no metadata backups the new LV's UUID is read from the
    PV's metadata area: no report after lvcreate, and the poll, seeing the
    PV's metadata change, knows it for the daemon's own (no refresh either)."""
    with open(os.path.join(os.environ["LVM_SYSTEM_DIR"], "lvm.conf"), "a") as f:
        f.write("backup {\n    backup = 0\n    archive = 0\n}\n")
    d = world.daemon()
    name = f"{world.prefix}nobackup"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("nb.img", "32M"))])
    await asyncio.sleep(1.0)  # let the creation's own refreshes pass
    mark = os.path.getsize(d.log_path)

    def since_mark() -> str:
        with open(d.log_path) as f:
            f.seek(mark)
            return f.read()
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["fast", 4 * MiB, {}])
    lv = json.loads(lvm("lvs", "--reportformat", "json", "-o", "lv_uuid", f"{name}/fast").stdout)
    assert await client.get(vol, VOL, "UUID") == lv["report"][0]["lv"][0]["lv_uuid"]
    await asyncio.sleep(1.5)  # three polls
    after = since_mark()
    assert "'lvcreate'" in after and "'fullreport'" not in after, after
    await client.call(pool, POOL, "DeallocateVolume", "s", ["fast"])
    await asyncio.sleep(1.5)
    assert "'lvremove'" in since_mark() and "'fullreport'" not in since_mark()
    assert await client.get(pool, POOL, "Volumes") == []


async def test_outside_lv_changes_are_read_from_metadata_without_a_report(world, client):
    """The refresh after an outside lvcreate, lvrename, lvresize or lvremove reads
    the VG's metadata text from its PV (no `lvm fullreport`, whose cost grows
    with the VG), and ends where a report would."""
    d = world.daemon()
    vg, pool = await make_pool(world, client)
    await asyncio.sleep(1.0)  # the creation's own refreshes pass
    mark = os.path.getsize(d.log_path)
    sig = await subscribe(client)
    lvm("lvcreate", "--yes", "-n", "inc", "-L", "8m", vg)
    await within(lambda: [m for m in sig.named("InterfacesAdded", ROOT)])
    vol = sig.named("InterfacesAdded", ROOT)[0].body[0]

    def seen(prop, value):
        return [m for m in sig.named("PropertiesChanged", vol)
                if prop in m.body[1] and m.body[1][prop].value == value]
    lvm("lvrename", vg, "inc", "inc2")
    await within(lambda: seen("Name", "inc2"))
    lvm("lvresize", "--yes", "-L", "12m", f"{vg}/inc2")
    await within(lambda: seen("Capacity", 12 * MiB))
    assert await client.get(pool, POOL, "Available") == \
        await client.get(pool, POOL, "Capacity") - 12 * MiB
    lvm("lvremove", "--yes", f"{vg}/inc2")
    await within(lambda: [m for m in sig.named("InterfacesRemoved", ROOT) if m.body[0] == vol])
    with open(d.log_path) as f:
        f.seek(mark)
        assert "'fullreport'" not in f.read()
    await client.call(MANAGER, MGR, "Refresh")  # a full report finds nothing to change
    assert await client.get(pool, POOL, "Volumes") == []


async def test_refresh_reads_the_pools_vgs_only(world, client):
    """Another VG on the host (someone else's, maybe of 10,000 LVs) is not
    read by a refresh: `lvm fullreport` is given the pools' VG names."""
    from tests.integration.test_ownership import outside_vg
    d = world.daemon()
    vg, pool = await make_pool(world, client)
    outside_vg(world, f"{world.prefix}other", "theirs")
    offset = os.path.getsize(d.log_path)

    await client.call(pool, POOL, "Refresh")

    with open(d.log_path) as f:
        f.seek(offset)
        runs = [line for line in f if "run: ['lvm', 'fullreport'" in line]
    assert len(runs) == 1 and runs[0].rstrip().endswith(f"'--', '{vg}']"), runs
    assert await client.get(pool, POOL, "State") == "running"
