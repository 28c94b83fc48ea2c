"""Device PVs (loop devices over files stand in for disks): create, refuse
signatures and non-block paths, adopt an existing VG, mixed pools, reboot."""
import os
import subprocess


from tests.harness import MANAGER, expect_error, MGR, POOL, VOL, MiB
from tests.lvmenv import loops_under, lvm, lvm_state


def disk(world, name, size=32 * MiB):
    """A 'disk': a loop device over a file of the test's own."""
    path = world.path(name)
    with open(path, "wb") as f:
        f.truncate(size)
    return subprocess.run(["losetup", "--find", "--show", path], capture_output=True, text=True,
                          check=True).stdout.strip()


def device_pool(name, *devices, vg=None):
    pvs = "".join(f"<physical_volume type='device'><device>{d}</device></physical_volume>"
                  for d in devices)
    vg_el = f"<volume_group>{vg}</volume_group>" if vg else ""
    return f"<pool type='lvm'><name>{name}</name>{vg_el}{pvs}</pool>"


async def test_device_pool_mixed_with_a_file_and_reboot(world, client):
    d = world.daemon()
    dev = disk(world, "disk1.img")
    name = f"{world.prefix}mixed"
    xml = (f"<pool type='lvm'><name>{name}</name>"
           f"<physical_volume type='device'><device>{dev}</device></physical_volume>"
           f"<physical_volume type='file'><file size='32M'>{world.path('f.img')}</file></physical_volume>"
           f"</pool>")
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    assert dev in await client.get(pool, POOL, "PhysicalVolumes")
    assert await client.get(pool, POOL, "Capacity") == 56 * MiB
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["v", 40 * MiB, {}])
    d.stop()
    # The file's loop goes away at "power off"; the disk stays (it is a disk).
    for loop in loops_under(world.base):
        backing = open(f"/sys/block/{loop[5:]}/loop/backing_file").read().strip()
        if backing.endswith("/f.img"):
            subprocess.run(["losetup", "--detach", loop], check=True)
    world.daemon()
    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(vol, VOL, "Capacity") == 40 * MiB
    await client.call(pool, POOL, "Stop")
    assert await client.get(pool, POOL, "State") == "inactive"
    # Delete wipes the disk's PV label, removes the file it created, leaves the disk.
    await client.call(pool, POOL, "Delete")
    assert not os.path.exists(world.path("f.img"))
    blkid = subprocess.run(["blkid", "-p", dev], capture_output=True, text=True)
    assert "LVM2_member" not in blkid.stdout


async def test_device_refusals_change_nothing(world, client):
    world.daemon()
    fs_disk = disk(world, "fs.img")
    subprocess.run(["mkfs.ext4", "-q", "-F", fs_disk], check=True, capture_output=True)
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}fs", fs_disk)]))
    assert "ext4" in msg and "wipefs --all" in msg
    assert "ext4" in subprocess.run(["blkid", "-p", fs_disk], capture_output=True, text=True).stdout
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}nb", "/dev/null")]))
    assert "not a block device" in msg
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}nx", "/dev/nonexistent-disk")]))
    assert "does not exist" in msg
    # another VG's PV
    other = disk(world, "other.img")
    lvm("pvcreate", "--yes", other)
    lvm("vgcreate", f"{world.prefix}theirs", other)
    before = lvm_state()
    msg = await expect_error("InvalidArgument", client.call(
        MANAGER, MGR, "CreatePool", "s", [device_pool(f"{world.prefix}steal", other)]))
    assert "LVM2_member" in msg
    assert lvm_state() == before
    assert await client.get(MANAGER, MGR, "Pools") == []


async def test_adopt_an_existing_vg(world, client):
    world.daemon()
    dev = disk(world, "adopt.img")
    vg = f"{world.prefix}existing"
    lvm("pvcreate", "--yes", dev)
    lvm("vgcreate", vg, dev)
    lvm("lvcreate", "--yes", "-n", "theirs", "-L", "8m", vg)
    pool = await client.call(MANAGER, MGR, "DefinePool", "s",
                             [f"<pool type='lvm'><name>{world.prefix}adopted</name>"
                              f"<volume_group>{vg}</volume_group></pool>"])
    await client.call(pool, POOL, "Start")
    assert await client.get(pool, POOL, "State") == "running"
    vols = await client.get(pool, POOL, "Volumes")
    assert [await client.get(v, VOL, "Name") for v in vols] == ["theirs"]
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["mine", 4 * MiB, {}])
    assert len(await client.get(pool, POOL, "Volumes")) == 2
