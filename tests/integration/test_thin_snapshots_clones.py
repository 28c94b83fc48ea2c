"""Thin pools, snapshots, clones, rename, activation and Open on a host without
device-mapper (the CI kernel): what needs it is refused with NotSupported and a
reason, bad input with its own named error, and none of it changes LVM;
rename and the clone's crash bookkeeping work for real."""
import asyncio
import json
import os

from dbus_fast import Variant

from tests.harness import MANAGER, MGR, POOL, VOL, MiB, expect_error, subscribe, wait_for
from tests.integration.test_cli import fails, ok
from tests.lvmenv import lvm, lvm_state

NO_DM = "device-mapper"


async def make_pool(world, client, name="tp", size="32M"):
    return await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}{name}", (f"{name}.img", size))])


async def test_rename_keeps_the_object_path_and_signals_name_and_path_at_once(world, client):
    world.daemon()
    pool = await make_pool(world, client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["disk", 4 * MiB, {}])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["other", 4 * MiB, {}])
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(vol, VOL, "Rename", "s", ["bad/name"]))
    assert "new name" in msg
    msg = await expect_error("AlreadyExists", client.call(vol, VOL, "Rename", "s", ["other"]))
    assert "'other'" in msg
    assert lvm_state() == before
    signals = await subscribe(client)
    await client.call(vol, VOL, "Rename", "s", ["renamed"])
    assert await client.get(vol, VOL, "Name") == "renamed"
    vg = await client.get(pool, POOL, "VolumeGroup")
    assert await client.get(vol, VOL, "Path") == f"/dev/{vg}/renamed"
    assert await client.call(MANAGER, MGR, "LookupVolume", "ss", [f"{world.prefix}tp", "renamed"]) == vol
    lvs = lvm("lvs", "--reportformat", "json", "-o", "lv_name,lv_tags", vg).stdout
    names = {lv["lv_name"]: lv["lv_tags"] for lv in json.loads(lvs)["report"][0]["lv"]}
    assert names == {"renamed": "storaged", "other": "storaged"}
    await wait_for(lambda: signals.named("PropertiesChanged", vol))
    changed = [set(m.body[1]) for m in signals.named("PropertiesChanged", vol)]
    assert any({"Name", "Path"} <= c for c in changed), changed


async def test_what_needs_device_mapper_says_so_and_changes_nothing(world, client):
    world.daemon()
    pool = await make_pool(world, client)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["disk", 4 * MiB, {}])
    before = lvm_state()
    calls = [
        (pool, POOL, "CreateThinPool", "ta{sv}", [8 * MiB, {}]),
        (vol, VOL, "Snapshot", "sa{sv}", ["snap", {}]),
        (vol, VOL, "Clone", "sa{sv}", ["copy", {}]),
        (vol, VOL, "Activate", "a{sv}", [{}]),
        (vol, VOL, "Deactivate", "", []),
        (vol, VOL, "Open", "sa{sv}", ["r", {}]),
    ]
    for call in calls:
        msg = await expect_error("NotSupported", client.call(*call))
        assert NO_DM in msg and "nothing was changed" in msg, (call[2], msg)
    # Thin volumes: the pool has no thin pool, and the answer says how to add one.
    for call in [(pool, POOL, "AllocateVolume", "sta{sv}", ["t", 64 * MiB, {"thin": Variant("b", True)}]),
                 (pool, POOL, "CreateVolume", "s", ["<volume><name>t</name><capacity>64M</capacity>"
                                                    "<allocation>0</allocation></volume>"])]:
        msg = await expect_error("NotSupported", client.call(*call))
        assert "no thin pool" in msg and "CreateThinPool" in msg and "<thin_pool" in msg, msg
    assert lvm_state() == before
    props = await client.get_all(pool, POOL)
    assert (props["ThinPoolSize"], props["ThinDataUsage"], props["VirtualAllocation"]) == (0, 0.0, 0)
    props = await client.get_all(vol, VOL)
    assert (props["Thin"], props["Origin"], props["DataUsage"]) == (False, "/", 0.0)


async def test_a_pool_with_a_thin_pool_is_refused_before_anything_is_made(world, client):
    world.daemon()
    before = lvm_state()
    xml = world.pool_xml(f"{world.prefix}thin", ("thin.img", "32M")).replace(
        "</pool>", "<thin_pool size='50%' autoextend_threshold='70'/></pool>")
    msg = await expect_error("NotSupported", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert NO_DM in msg
    assert lvm_state() == before and not os.path.exists(world.path("thin.img"))
    bad = xml.replace("autoextend_threshold='70'", "autoextend_threshold='10'")
    msg = await expect_error("InvalidArgument", client.call(MANAGER, MGR, "CreatePool", "s", [bad]))
    assert "autoextend_threshold" in msg and "50 to 100" in msg
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [xml.replace("size='50%'", "size='0'")]))
    assert "thin_pool size" in msg and "greater than zero" in msg
    assert await client.get(MANAGER, MGR, "Pools") == []


async def test_bad_input_is_named_first_and_changes_nothing(world, client):
    world.daemon()
    pool = await make_pool(world, client)
    small = await make_pool(world, client, "small", "8M")
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["disk", 12 * MiB, {}])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["taken", 4 * MiB, {}])
    before = lvm_state()
    cases = [
        ("InvalidArgument", "above zero", (pool, POOL, "CreateThinPool", "ta{sv}", [0, {}])),
        ("InvalidArgument", "autoextend_threshold", (pool, POOL, "CreateThinPool", "ta{sv}",
                                                     [8 * MiB, {"autoextend_threshold": Variant("u", 5)}])),
        ("InvalidArgument", "unknown option", (pool, POOL, "CreateThinPool", "ta{sv}",
                                               [8 * MiB, {"chunk": Variant("u", 5)}])),
        ("InvalidArgument", "must be of type", (pool, POOL, "AllocateVolume", "sta{sv}",
                                                ["x", MiB, {"thin": Variant("s", "yes")}])),
        ("InvalidArgument", "snapshot name", (vol, VOL, "Snapshot", "sa{sv}", ["a b", {}])),
        ("InvalidArgument", "above zero", (vol, VOL, "Snapshot", "sa{sv}", ["s", {"size": Variant("t", 0)}])),
        ("AlreadyExists", "'taken'", (vol, VOL, "Snapshot", "sa{sv}", ["taken", {}])),
        ("InvalidArgument", "not a snapshot", (vol, VOL, "Revert", "", [])),
        ("InvalidArgument", "clone name", (vol, VOL, "Clone", "sa{sv}", ["-x", {}])),
        ("AlreadyExists", "'taken'", (vol, VOL, "Clone", "sa{sv}", ["taken", {}])),
        ("NoSpace", "needs", (vol, VOL, "Clone", "sa{sv}", ["big", {"pool": Variant("o", small)}])),
        ("InvalidArgument", "not a pool", (vol, VOL, "Clone", "sa{sv}", ["c", {"pool": Variant("o", "/x")}])),
        ("NotSupported", "no thin pool", (vol, VOL, "Clone", "sa{sv}", ["c", {"thin": Variant("b", True)}])),
        ("InvalidArgument", "mode", (vol, VOL, "Open", "sa{sv}", ["rw", {}])),
        ("InvalidArgument", "unknown option", (vol, VOL, "Open", "sa{sv}", ["r", {"x": Variant("b", True)}])),
    ]
    for kind, words, call in cases:
        msg = await expect_error(kind, client.call(*call))
        assert words in msg, (call[2], msg)
    assert lvm_state() == before


async def test_a_clone_interrupted_by_a_crash_is_removed_at_the_next_start(world, client):
    """What a kill -9 mid-copy leaves (the new LV and the pool's intent) is
    removed by the next start; the origin stays."""
    d = world.daemon()
    pool = await make_pool(world, client)
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    uuid = await client.get(pool, POOL, "UUID")
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["disk", 4 * MiB, {}])
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["half", 4 * MiB, {}])
    d.stop(9)
    records = world.path("lib/pools")
    os.makedirs(records, exist_ok=True)
    record = os.path.join(records, f"{uuid}.json")
    data = json.load(open(record)) if os.path.exists(record) else {"created": {}}
    data["intent"] = {"op": "clone", "key": "half"}
    with open(record, "w") as f:
        json.dump(data, f)
    world.daemon()
    vg = f"{world.prefix}tp"
    await wait_for(lambda: "half" not in lvm("lvs", "--noheadings", "-o", "lv_name", vg).stdout, 10)
    assert lvm("lvs", "--noheadings", "-o", "lv_name", vg).stdout.split() == ["disk"]
    assert "intent" not in json.load(open(record))
    assert [await client.get(p, VOL, "Name") for p in await client.get(pool, POOL, "Volumes")] == ["disk"]


async def test_storagectl_verbs(world, client):
    world.daemon()
    name = f"{world.prefix}tp"
    pool = await make_pool(world, client)
    ok(world, "vol-create", name, "disk", "4M")
    assert ok(world, "vol-rename", name, "disk", "guest") == f"Volume disk renamed to guest in pool {name}\n"
    listing = ok(world, "vol-list", name)
    assert listing.split("\n")[0].split() == ["Name", "Path", "Capacity", "Active", "Thin", "Origin",
                                              "Data", "usage", "Lock"], listing
    assert listing.split("\n")[2].split()[0] == "guest"
    before = lvm_state()
    assert NO_DM in fails(world, "NotSupported", "pool-thin-create", name, "8M")
    assert "no thin pool" in fails(world, "NotSupported", "vol-create", name, "t", "1G", "--thin")
    assert NO_DM in fails(world, "NotSupported", "vol-snapshot", name, "guest", "s1")
    assert NO_DM in fails(world, "NotSupported", "vol-clone", name, "guest", "c1")
    assert NO_DM in fails(world, "NotSupported", "vol-activate", name, "guest")
    assert NO_DM in fails(world, "NotSupported", "vol-upload", name, "guest", "/dev/null")
    assert NO_DM in fails(world, "NotSupported", "vol-download", name, "guest", world.path("out.img"))
    assert "not a snapshot" in fails(world, "InvalidArgument", "vol-revert", name, "guest")
    assert lvm_state() == before
    info = ok(world, "pool-info", name)
    assert "Thin pool size" in info and "Virtual allocation" in info
    assert await client.get(pool, POOL, "ThinPoolSize") == 0
