"""iSCSI and NFS physical volumes whose server is not there: CreatePool is
refused with a named error and leaves nothing behind. (The CI kernel has
neither iSCSI nor NFS; the VM lab tests them for real.)"""
import asyncio
import os
import socket

from tests.harness import MANAGER, MGR, POOL, expect_error
from tests.lvmenv import loops_under, lvm_state


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_unreachable_iscsi_target_is_refused_and_leaves_nothing(world, client):
    world.daemon()
    before = lvm_state()
    xml = (f"<pool type='lvm'><name>{world.prefix}iscsi</name>"
           f"<physical_volume type='iscsi'><host port='{closed_port()}'>127.0.0.1</host>"
           f"<target>iqn.2026-01.org.storaged.test:nothing</target><lun>1</lun></physical_volume>"
           f"</pool>")
    msg = await expect_error("Failed", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert "iqn.2026-01.org.storaged.test:nothing" in msg and "127.0.0.1" in msg
    # Without open-iscsi on the host, the message says what to install.
    if not any(os.access(os.path.join(d, "iscsiadm"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/sbin:/sbin").split(":") + ["/usr/sbin", "/sbin"]):
        assert "open-iscsi" in msg
    assert lvm_state() == before
    assert loops_under(world.base) == []
    assert await client.get(MANAGER, MGR, "Pools") == []


async def test_unreachable_nfs_server_is_refused_and_leaves_nothing(world, client):
    world.daemon()
    before = lvm_state()
    xml = (f"<pool type='lvm'><name>{world.prefix}nfs</name>"
           f"<physical_volume type='nfs'><server>127.0.0.1</server><export>/nothing</export>"
           f"<file size='16M'>pool.img</file></physical_volume></pool>")
    msg = await expect_error("Failed", client.call(MANAGER, MGR, "CreatePool", "s", [xml]))
    assert "NFS export 127.0.0.1:/nothing" in msg
    assert lvm_state() == before and loops_under(world.base) == []
    assert await client.get(MANAGER, MGR, "Pools") == []
    nfs_dir = world.path("run/nfs")
    assert not os.path.isdir(nfs_dir) or os.listdir(nfs_dir) == []


async def test_a_source_out_of_reach_is_retried_and_its_pool_says_why(world, client):
    """A network PV down at Start leaves the pool degraded; the engine retries
    it on its own, and the pool's StateReason keeps the bring-up's own words
    (a refresh must not replace them by a vaguer "is not mounted"), logged
    once, not at every retry."""
    os.makedirs(world.path("etc"), exist_ok=True)
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write("[daemon]\nsource_retry_interval = 0.2\n")
    d = world.daemon()
    xml = (f"<pool type='lvm'><name>{world.prefix}later</name>"
           f"<physical_volume type='nfs'><server>127.0.0.1</server><export>/later</export>"
           f"<file size='16M'>pool.img</file></physical_volume></pool>")
    pool = await client.call(MANAGER, MGR, "DefinePool", "s", [xml])
    before = lvm_state()
    await client.call(pool, POOL, "Start")
    assert await client.get(pool, POOL, "State") == "degraded"
    first = await client.get(pool, POOL, "StateReason")
    assert "cannot mount NFS export 127.0.0.1:/later" in first, first
    await client.call(pool, POOL, "Refresh")
    await asyncio.sleep(1.0)  # five retries
    assert await client.get(pool, POOL, "State") == "degraded"
    reason = await client.get(pool, POOL, "StateReason")
    assert "cannot mount NFS export 127.0.0.1:/later" in reason, reason
    warned = [line for line in d.log().splitlines()
              if "WARNING" in line and "cannot mount NFS export 127.0.0.1:/later" in line]
    assert len(warned) == 1, warned
    assert lvm_state() == before and loops_under(world.base) == []
    await client.call(pool, POOL, "Stop")
    await client.call(pool, POOL, "Undefine")


async def test_boot_brings_network_pools_up_after_ready(world, client):
    """READY=1 (and every unit ordered after storaged) never waits for an iSCSI
    or NFS source: such pools are started after it, degraded until then."""
    d = world.daemon()
    local = await client.call(MANAGER, MGR, "CreatePool", "s",
                              [world.pool_xml(f"{world.prefix}local", ("local.img", "16M"))])
    await client.call(local, POOL, "SetAutostart", "b", [True])
    xml = (f"<pool type='lvm'><name>{world.prefix}net</name>"
           f"<physical_volume type='nfs'><server>127.0.0.1</server><export>/boot</export>"
           f"<file size='16M'>pool.img</file></physical_volume></pool>")
    net = await client.call(MANAGER, MGR, "DefinePool", "s", [xml])
    await client.call(net, POOL, "SetAutostart", "b", [True])
    d.stop()
    open(d.log_path, "w").close()
    world.daemon()
    assert await client.get(local, POOL, "State") == "running"
    assert await client.get(net, POOL, "State") == "degraded"
    for _ in range(100):  # the attempt comes after READY=1, on its own
        if "cannot mount NFS export 127.0.0.1:/boot" in d.log():
            break
        await asyncio.sleep(0.1)
    log = d.log().splitlines()
    ready = next(i for i, line in enumerate(log) if " ready: " in line)
    tried = [i for i, line in enumerate(log) if "cannot mount NFS export 127.0.0.1:/boot" in line]
    assert tried and min(tried) > ready, "\n".join(log)
    reason = await client.get(net, POOL, "StateReason")
    assert "once storaged has started" in reason or "cannot mount" in reason, reason
