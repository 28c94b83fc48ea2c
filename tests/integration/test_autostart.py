"""CreatePool marks a pool autostart (it is the host's storage); DefinePool + Build
+ Start keeps libvirt's habit (off until SetAutostart); <pool autostart='no'> opts out."""
import os
import subprocess

from tests.harness import MANAGER, MGR, POOL, VOL, MiB
from tests.lvmenv import loops_under


def reboot(world, daemon):
    """Power off as far as storage sees it: the daemon goes, every loop device goes."""
    assert daemon.stop() == 0
    for dev in loops_under(world.base):
        subprocess.run(["losetup", "--detach", dev], check=True)
    assert loops_under(world.base) == []
    return world.daemon()


async def test_created_pool_comes_back_after_reboot_without_set_autostart(world, client):
    d = world.daemon()
    name = f"{world.prefix}seed"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(name, ("seed.img", "32M"))])
    assert await client.get(pool, POOL, "Autostart") is True
    assert os.path.exists(world.path(f"etc/pools/autostart/{name}"))
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["disk0", 8 * MiB, {}])

    reboot(world, d)

    assert await client.get(pool, POOL, "State") == "running"
    [loop] = loops_under(world.base)
    with open(f"/sys/block/{os.path.basename(loop)}/loop/backing_file") as f:
        assert f.read().strip() == world.path("seed.img")
    assert await client.get(pool, POOL, "Volumes") == [vol]
    assert await client.get(vol, VOL, "Name") == "disk0"
    assert await client.get(vol, VOL, "Capacity") == 8 * MiB


async def test_define_build_start_and_autostart_no_stay_manual(world, client):
    d = world.daemon()
    defined = await client.call(MANAGER, MGR, "DefinePool", "s",
                                [world.pool_xml(f"{world.prefix}def", ("def.img", "16M"))])
    await client.call(defined, POOL, "Build")
    await client.call(defined, POOL, "Start")
    xml = world.pool_xml(f"{world.prefix}opt", ("opt.img", "16M"))
    opted_out = await client.call(MANAGER, MGR, "CreatePool", "s",
                                  [xml.replace("<pool type='lvm'>", "<pool type='lvm' autostart='no'>")])
    for pool in (defined, opted_out):
        assert await client.get(pool, POOL, "State") == "running"
        assert await client.get(pool, POOL, "Autostart") is False
    assert "autostart" not in await client.call(opted_out, POOL, "GetXML")  # not part of the definition

    reboot(world, d)

    for pool in (defined, opted_out):
        assert await client.get(pool, POOL, "State") == "inactive"
    assert loops_under(world.base) == []
