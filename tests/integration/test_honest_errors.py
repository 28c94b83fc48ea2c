"""Limits checked up front with the limit named, hints that name what the caller
can pass, no-ops that are no-ops, and what LVM is left with after a Delete."""
import asyncio
import os
import subprocess

import pytest
from dbus_fast import Variant

from tests.harness import MANAGER, MGR, POOL, VOL, MiB, expect_error
from tests.integration.test_device_pvs import device_pool, disk
from tests.lvmenv import loops_under, lvm_state


async def test_names_too_long_for_lvm_are_refused_up_front(world, client):
    world.daemon()
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [world.pool_xml("p" * 124, ("long.img", "16M"))]))
    assert "at most 123" in msg
    assert lvm_state() == before and not os.path.exists(world.path("long.img"))
    vg = world.prefix + "v" * 53  # 60 characters: volume names get 64
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("n.img", "16M"))])
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(
        pool, POOL, "AllocateVolume", "sta{sv}", ["x" * 65, 4 * MiB, {}]))
    assert "may have at most 64" in msg
    assert lvm_state() == before
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["x" * 64, 4 * MiB, {}])


@pytest.mark.parametrize("size", ["1", "511", "1M", "10KB", "4M"])
async def test_pv_files_below_lvm_s_minimum_are_refused(world, client, size):
    world.daemon()
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [world.pool_xml(f"{world.prefix}tiny", ("t.img", size))]))
    assert "smallest physical volume file, 5M" in msg
    assert lvm_state() == before and not os.path.exists(world.path("t.img"))
    assert loops_under(world.base) == []


async def test_hints_name_what_the_caller_can_pass(world, client):
    world.daemon()
    fs_disk = disk(world, "fs.img")
    subprocess.run(["mkfs.ext4", "-q", "-F", fs_disk], check=True, capture_output=True)
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}fs", fs_disk)]))
    assert f"wipefs --all {fs_disk}" in msg and "pass force" not in msg


async def test_another_pool_s_pv_is_named_by_its_pool(world, client):
    world.daemon()
    dev = disk(world, "shared.img")
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}one", dev)])
    # The definition names another path to the same disk: only LVM can tell.
    alias = f"/dev/storaged-test-{world.prefix}"
    os.symlink(dev, alias)
    try:
        msg = await expect_error("InvalidArgument", client.call(
            MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}two", alias)]))
    finally:
        os.unlink(alias)
    assert f"pool '{world.prefix}one'" in msg and "LVM2_member" in msg
    assert await client.get(pool, POOL, "State") == "running"


async def test_resize_to_the_same_size_is_a_no_op_and_shrink_says_how(world, client):
    d = world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}rs", ("rs.img", "32M"))])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 8 * MiB, {}])
    before = lvm_state()
    job = await client.call(vol, VOL, "Resize", "ta{sv}", [8 * MiB, {"force": Variant("b", True)}])
    job_if = "org.storaged.Storaged1.Job"
    for _ in range(100):
        if await client.get(job, job_if, "Completed"):
            break
        await asyncio.sleep(0.05)
    assert await client.get(job, job_if, "Error") == ""
    assert lvm_state() == before
    # The log shows the call's options as D-Bus people read them, not a Python repr.
    assert "{'force': <true>}" in d.log() and "Variant" not in d.log()
    msg = await expect_error("InvalidArgument", client.call(vol, VOL, "Resize", "ta{sv}", [4 * MiB, {}]))
    assert "force=true" in msg and "vol-resize --force" in msg


async def test_delete_leaves_no_entry_in_lvm_s_devices_file(world, client):
    world.daemon()
    name = f"{world.prefix}gone"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("gone.img", "16M"))])
    devices_file = os.path.join(os.environ["LVM_SYSTEM_DIR"], "devices", "system.devices")
    assert world.path("gone.img") in open(devices_file).read()
    await client.call(pool, POOL, "Stop")
    await client.call(pool, POOL, "Delete")
    assert world.path("gone.img") not in open(devices_file).read()
    out = subprocess.run(["lvm", "pvs"], capture_output=True, text=True)
    assert "gone.img" not in out.stderr


async def test_a_full_file_system_under_a_sparse_pool_file_is_named(world, client):
    """A pool file larger than its file system's free space is allowed (it is
    sparse) and said; once the file system is full, the pool says which file
    and which file system, and so does a failing call."""
    d = world.daemon()
    fs = world.path("small-fs")
    os.makedirs(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12M", "tmpfs", fs], check=True)
    try:
        pool = await client.call(MANAGER, MGR, "CreatePool", "s", [
            f"<pool type='lvm'><name>{world.prefix}full</name><physical_volume type='file'>"
            f"<file size='64M'>{fs}/pool.img</file></physical_volume></pool>"])
        assert f"{fs}/pool.img is 67108864 bytes, more than the" in d.log()
        with open(f"{fs}/filler", "wb") as f:
            try:
                while True:
                    f.write(bytes(MiB))
                    f.flush()
            except OSError:
                pass
        for _ in range(50):
            if await client.get(pool, POOL, "State") == "degraded":
                break
            await asyncio.sleep(0.1)
        reason = await client.get(pool, POOL, "StateReason")
        assert f"the file system holding physical volume file {fs}/pool.img ({fs}) is full" in reason
        os.unlink(f"{fs}/filler")
        for _ in range(50):
            if await client.get(pool, POOL, "State") == "running":
                break
            await asyncio.sleep(0.1)
        assert await client.get(pool, POOL, "State") == "running"
        await client.call(pool, POOL, "Stop")
    finally:
        d.stop()
        for loop in loops_under(fs):
            subprocess.run(["losetup", "--detach", loop], check=False)
        subprocess.run(["umount", "--lazy", fs], check=False)
