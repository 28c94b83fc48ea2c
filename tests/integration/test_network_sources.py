"""iSCSI and NFS physical volumes whose server is not there: CreatePool is
refused with a named error and leaves nothing behind. (The CI kernel has
neither iSCSI nor NFS; the VM lab tests them for real.)"""
import os
import socket

from tests.harness import MANAGER
from tests.integration.test_end_to_end import MGR, expect_error
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
