"""Faults injected for real: the config directory full or read-only while a
definition is written (a real tmpfs, filled or remounted read-only), and
LVM's lock held by another process for longer than the command timeout."""
import contextlib
import fcntl
import os
import re
import subprocess

import pytest

from tests.harness import MANAGER, MGR, POOL, MiB, expect_error
from tests.lvmenv import lvm_state


@contextlib.contextmanager
def small_tmpfs(path, size="256k"):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "storaged-test", path],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", path], check=False)


def lvm_now():
    """LVM's state but for the VG's sequence number, which an undone change bumps."""
    return re.sub(r'"vg_seqno":"\d+"', "", lvm_state())


def listing(path):
    return sorted(os.listdir(path))


def read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize("fault", ["full", "read-only"])
async def test_config_dir_full_or_read_only_keeps_the_old_definition(world, client, fault):
    pools_dir = world.path("etc/pools")
    with small_tmpfs(pools_dir):
        world.daemon()
        name = f"{world.prefix}cfg"
        pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("cf.img", "32M"))])
        definition = os.path.join(pools_dir, f"{name}.xml")
        old = read(definition)
        if fault == "full":
            fd = os.open(os.path.join(pools_dir, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * 4096):
                    pass
            os.close(fd)
            kind, why = "NoSpace", "No space left on device"
        else:
            subprocess.run(["mount", "-o", "remount,ro", pools_dir], check=True)
            kind, why = "Failed", "Read-only file system"
        files, lvm_before = listing(pools_dir), lvm_now()
        # A new definition: refused, named, nothing written.
        text = await expect_error(kind, client.call(
            MANAGER, MGR, "DefinePool", "s", [world.pool_xml(f"{world.prefix}new", ("n.img", "32M"))]))
        assert why in text and "nothing was changed" in text, text
        # A change that rewrites the existing definition: refused, LVM rolled back.
        extra = world.path("cf2.img")
        text = await expect_error(kind, client.call(
            pool, POOL, "AddPhysicalVolume", "s",
            [f"<physical_volume type='file'><file size='32M'>{extra}</file></physical_volume>"]))
        assert why in text, text
        assert read(definition) == old
        assert listing(pools_dir) == files  # no temporary file left behind
        assert lvm_now() == lvm_before and not os.path.exists(extra)
        assert await client.get(pool, POOL, "State") == "running"
        assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 1
        # The daemon serves on, and once there is room again the same call works.
        if fault == "full":
            os.unlink(os.path.join(pools_dir, "filler"))
        else:
            subprocess.run(["mount", "-o", "remount,rw", pools_dir], check=True)
        await client.call(pool, POOL, "AddPhysicalVolume", "s",
                          [f"<physical_volume type='file'><file size='32M'>{extra}</file></physical_volume>"])
        assert extra in read(definition)
        assert len(await client.get(pool, POOL, "PhysicalVolumes")) == 2
        await client.call(pool, POOL, "Stop")
        await client.call(pool, POOL, "Delete")
        await client.call(pool, POOL, "Undefine")
        for d in world.daemons.get(world.base, []):
            d.stop()  # before the tmpfs goes


async def test_lvm_lock_held_longer_than_the_timeout_is_a_named_failure(world, client):
    os.makedirs(world.path("etc"), exist_ok=True)
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write("[daemon]\ncommand_timeout = 3\n")
    world.daemon()
    vg = f"{world.prefix}lk"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("lk.img", "32M"))])
    other = await client.call(MANAGER, MGR, "CreatePool", "s",
                              [world.pool_xml(f"{world.prefix}ok", ("ok.img", "32M"))])
    # The VG's lock, where this world's LVM keeps it (tests/lvmenv.py), held as
    # an admin's stuck lvm would hold it.
    lock = os.path.join(os.environ["LVM_SYSTEM_DIR"], "lock", f"V_{vg}")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # no lvm from this test until it is released
        text = await expect_error("Failed", client.call(pool, POOL, "AllocateVolume", "sta{sv}",
                                                        ["v", 4 * MiB, {}]))
        assert "did not finish within 3 s" in text, text
        # Other pools are served meanwhile.
        await client.call(other, POOL, "AllocateVolume", "sta{sv}", ["fine", 4 * MiB, {}])
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert '"lv_name":"v"' not in lvm_state()  # killed while waiting: nothing made
    # The lock released, the same call works.
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    assert vol.startswith(pool)
