"""Pools shared by several hosts, as far as one host without device-mapper goes:
the XML, the host_id and lvmlockd checks (named errors, nothing changed), the
properties, and ImportPool, which serves a VG storaged made from its tags.
The shared VGs themselves (sanlock's leases live in an LV) are proven in the
VM lab's two-host stage (tests/system, `shared`)."""
import json
import os

import pytest
from dbus_fast import Variant

from tests.harness import MANAGER, MGR, POOL, VOL, MiB, expect_error
from tests.integration.test_device_pvs import device_pool, disk
from tests.integration.test_ownership import outside_vg
from tests.lvmenv import lvm, lvm_state


def shared_xml(name, device):
    return (f"<pool type='lvm'><name>{name}</name><locking type='sanlock'/>"
            f"<physical_volume type='device'><device>{device}</device></physical_volume></pool>")


def write_conf(world, text):
    os.makedirs(world.path("etc"), exist_ok=True)
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write(f"[daemon]\n{text}\n")


def vg_tags(vg):
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_tags", vg).stdout
    return sorted(json.loads(out)["report"][0]["vg"][0]["vg_tags"].split(","))


async def refused_unchanged(world, client, xml, kind, *says):
    before = lvm_state()
    msg = await expect_error(kind, client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    for words in says:
        assert words in msg, msg
    assert lvm_state() == before
    assert await client.get(MANAGER, MGR, "Pools") == []
    assert not os.listdir(world.path("etc/pools")) if os.path.isdir(world.path("etc/pools")) else True
    return msg


async def test_a_shared_pool_without_a_host_id_is_refused_saying_how_to_set_one(world, client):
    world.daemon()
    dev = disk(world, "shared.disk")
    await refused_unchanged(world, client, shared_xml(f"{world.prefix}sh", dev), "NotSupported",
                            "no host_id", "host_id = N", "/etc/storaged/storaged.conf",
                            "local/host_id in /etc/lvm/lvmlocal.conf")
    # Nothing was written to the device either: no PV label.
    assert dev not in lvm("pvs", "-o", "pv_name", "--noheadings").stdout


async def test_with_a_host_id_a_shared_pool_needs_lvmlockd_and_says_so(world, client):
    write_conf(world, "host_id = 7")
    world.daemon()
    dev = disk(world, "shared.disk")
    await refused_unchanged(world, client, shared_xml(f"{world.prefix}sh", dev), "NotSupported",
                            "use_lvmlockd = 1", "lvm2-lockd", "sanlock")
    # DefinePool stores it (no storage touched); Build and Start refuse the same way.
    pool = await client.call(MANAGER, MGR, "DefinePool", "s", [shared_xml(f"{world.prefix}sh", dev)])
    assert await client.get(pool, POOL, "Shared") is True
    assert await client.get(pool, POOL, "LockType") == "sanlock"
    assert await client.get(pool, POOL, "HostId") == 7
    before = lvm_state()
    await expect_error("NotSupported", client.call(pool, POOL, "Build"))
    assert lvm_state() == before


@pytest.mark.parametrize("value", ["0", "2001", "one", "-3", "１"])
def test_a_host_id_out_of_range_stops_the_daemon_naming_it(world, value):
    write_conf(world, f"host_id = {value}")
    with pytest.raises(RuntimeError) as err:
        world.daemon()
    assert "host_id" in str(err.value) and "1 to 2000" in str(err.value)


async def test_a_local_pool_and_its_volumes_say_they_are_not_shared(world, client):
    world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}loc", ("loc.img", "32M"))])
    props = await client.get_all(pool, POOL)
    assert (props["Shared"], props["LockType"], props["HostId"]) == (False, "", 0)
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    assert await client.get(vol, VOL, "Lock") == "none"
    msg = await expect_error("InvalidArgument",
                             client.call(vol, VOL, "Activate", "a{sv}", [{"shared": Variant("b", True)}]))
    assert "not shared between hosts" in msg


async def test_import_serves_a_vg_storaged_made_as_the_same_pool(world, client):
    first = world.daemon()
    name = f"{world.prefix}imp"
    dev = disk(world, "imp.disk")
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [device_pool(name, dev)])
    uuid = await client.get(pool, POOL, "UUID")
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["keep", 4 * MiB, {}])
    # The pool's identity is in the VG itself, for another host to find.
    assert vg_tags(name) == [f"storaged.pool={name}", f"storaged.uuid={uuid}"]
    await client.call(pool, POOL, "Stop")
    first.stop()
    # "Another host": a daemon with configuration and state of its own, which
    # has never seen the pool, serves it from its VG alone.
    world.daemon("--config-dir", world.path("other-etc"), "--state-dir", world.path("other-lib"))
    assert await client.get(MANAGER, MGR, "Pools") == []
    # Its name taken here by another pool: refused, nothing changed.
    other = await client.call(MANAGER, MGR, "DefinePool", "s",
                              [f"<pool type='lvm'><name>{name}</name><volume_group>x{name}</volume_group></pool>"])
    msg = await expect_error("AlreadyExists", client.call(MANAGER, MGR, "ImportPool", "s", [name]))
    assert f"a pool named {name!r}" in msg
    await client.call(other, POOL, "Undefine")
    again = await client.call(MANAGER, MGR, "ImportPool", "s", [name])
    assert again == pool
    assert await client.get(again, POOL, "State") == "running"
    assert await client.get(again, POOL, "Autostart") is True
    assert await client.call(MANAGER, MGR, "LookupVolume", "ss", [name, "keep"]) == vol
    # Again (a retry, or after a crash cut the first one short): the same pool, no error.
    assert await client.call(MANAGER, MGR, "ImportPool", "s", [name]) == again
    assert len(await client.get(MANAGER, MGR, "Pools")) == 1
    # This host did not create it: Delete leaves it.
    await client.call(again, POOL, "Stop")
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(again, POOL, "Delete"))
    assert "did not create" in msg and lvm_state() == before


async def test_import_refuses_what_storaged_did_not_make(world, client):
    world.daemon()
    vg = f"{world.prefix}adm"
    outside_vg(world, vg, "precious")
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(MANAGER, MGR, "ImportPool", "s", [vg]))
    assert "not made by storaged" in msg and f"<volume_group>{vg}</volume_group>" in msg
    await expect_error("NotFound", client.call(MANAGER, MGR, "ImportPool", "s", [f"{world.prefix}none"]))
    await expect_error("InvalidArgument", client.call(MANAGER, MGR, "ImportPool", "s", ["bad/name"]))
    assert lvm_state() == before and await client.get(MANAGER, MGR, "Pools") == []
