"""CreatePool marks a pool autostart (it is the host's storage); DefinePool + Build
+ Start keeps libvirt's habit (off until SetAutostart); <pool autostart='no'> opts out."""
import os
import re
import subprocess
import sys

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


def _log_since(daemon, offset: int) -> str:
    with open(daemon.log_path) as f:
        f.seek(offset)
        return f.read()


async def test_a_boot_activates_every_pool_in_one_command_and_says_what_it_took(world, client):
    """At boot each LVM command costs seconds on a slow host: one vgchange for
    all the pools, and the ready line says how start-up time was spent."""
    d = world.daemon()
    pools = [await client.call(MANAGER, MGR, "CreatePool", "s",
                               [world.pool_xml(f"{world.prefix}b{i}", (f"b{i}.img", "16M"))])
             for i in range(3)]
    offset = os.path.getsize(d.log_path)

    d = reboot(world, d)

    for pool in pools:
        assert await client.get(pool, POOL, "State") == "running"
    log = _log_since(d, offset)
    assert log.count("ran lvm vgchange") == 1, log
    ready = re.search(r"ready: 3 pool\(s\), ([0-9.]+) s after exec \(interpreter and imports "
                      r"([0-9.]+) s, (\d+) command\(s\) ([0-9.]+) s, the longest [a-z]+ [-a-z]+ "
                      r"[0-9.]+ s\)", log)
    assert ready, log
    total, imports, commands, spent = (float(x) for x in ready.groups())
    before_ready = log[:ready.start()]
    assert commands == before_ready.count("storaged: DEBUG: ran ") > 3
    assert 0 < imports < total and 0 < spent < total


async def test_a_pool_that_cannot_activate_at_boot_keeps_its_own_reason(world, client):
    """The one vgchange fails when one VG cannot be activated; then each pool
    is activated by itself, so the others run and only that one says why."""
    d = world.daemon()
    pools = [await client.call(MANAGER, MGR, "CreatePool", "s",
                               [world.pool_xml(f"{world.prefix}f{i}", (f"f{i}.img", "16M"))])
             for i in range(3)]
    assert d.stop() == 0
    for dev in loops_under(world.base):
        subprocess.run(["losetup", "--detach", dev], check=True)
    os.unlink(world.path("f1.img"))  # as a disk that did not come back
    offset = os.path.getsize(d.log_path)

    d = world.daemon()

    assert [await client.get(p, POOL, "State") for p in pools] == ["running", "degraded", "running"]
    assert "f1.img" in await client.get(pools[1], POOL, "StateReason")
    for pool in (pools[0], pools[2]):
        assert await client.get(pool, POOL, "StateReason") == ""
    assert _log_since(d, offset).count("ran lvm vgchange") == 4  # all three, then each


async def test_without_a_bus_the_pools_still_come_back_and_the_daemon_says_why(world, client):
    """The boot and the bus connection go side by side: a bus that cannot be
    reached fails the daemon (exit 1, systemd starts it again) only once the
    host's storage is back, never half started."""
    d = world.daemon()
    await client.call(MANAGER, MGR, "CreatePool", "s",
                      [world.pool_xml(f"{world.prefix}nb", ("nb.img", "16M"))])
    assert d.stop() == 0
    for dev in loops_under(world.base):
        subprocess.run(["losetup", "--detach", dev], check=True)

    r = subprocess.run([sys.executable, "-m", "storaged.daemon", "--bus",
                        f"unix:path={world.path('no-bus-here')}",
                        "--config-dir", world.path("etc"), "--state-dir", world.path("lib"),
                        "--run-dir", world.path("run"), "--no-default-pool"],
                       capture_output=True, text=True, timeout=120)

    assert r.returncode == 1, r.stderr
    assert "cannot connect to the bus unix:path=" in r.stderr
    [loop] = loops_under(world.base)  # attached by the boot, not by half of it
    with open(f"/sys/block/{os.path.basename(loop)}/loop/backing_file") as f:
        assert f.read().strip() == world.path("nb.img")
