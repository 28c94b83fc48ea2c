"""Network PV sources, what can be checked without an iSCSI target or NFS server."""
import os

import pytest

from storaged.errors import InvalidArgument
from storaged.model.definitions import IscsiSource, NfsSource
from storaged.sources import backend_for
from storaged.sources.iscsi import IscsiBackend, by_path, read_chap
from storaged.sources.nfs import MOUNT_OPTIONS, NfsBackend, mount_argv, mount_point

IQN = "iqn.2007-01.org.example:store"


def test_by_path_name_is_udevs():
    src = IscsiSource(host="192.0.2.10", port=3260, target=IQN, lun=1)
    assert by_path(src) == f"/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-{IQN}-lun-1"
    v6 = IscsiSource(host="2001:db8::1", port=3261, target=IQN, lun=0)
    assert by_path(v6) == f"/dev/disk/by-path/ip-[2001:db8::1]:3261-iscsi-{IQN}-lun-0"


def test_iscsi_problem_names_the_lun_when_not_connected():
    src = IscsiSource(host="192.0.2.10", target=IQN, lun=3)
    assert IscsiBackend().problem(src) == f"iSCSI LUN 3 of {IQN} at 192.0.2.10:3260 is not connected"
    assert IscsiBackend().device(src) is None


def _chap(tmp_path, text, mode=0o600, uid=0):
    path = tmp_path / "chap"
    path.write_text(text)
    os.chmod(path, mode)
    os.chown(path, uid, -1)
    return str(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own the file as root and as another user")
def test_chap_file_is_read_only_when_root_only(tmp_path):
    assert read_chap(_chap(tmp_path, "username=alice\npassword=s3cret=x\n")) == ("alice", "s3cret=x")
    with pytest.raises(InvalidArgument, match="readable by others"):
        read_chap(_chap(tmp_path, "username=a\npassword=b\n", mode=0o640))
    with pytest.raises(InvalidArgument, match="readable by others"):
        read_chap(_chap(tmp_path, "username=a\npassword=b\n", mode=0o604))
    with pytest.raises(InvalidArgument, match="not owned by root"):
        read_chap(_chap(tmp_path, "username=a\npassword=b\n", uid=65534))
    with pytest.raises(InvalidArgument, match="both"):
        read_chap(_chap(tmp_path, "username=a\n"))
    with pytest.raises(InvalidArgument, match="username="):
        read_chap(_chap(tmp_path, "user a\npassword=b\n"))
    with pytest.raises(InvalidArgument, match="No such file"):
        read_chap(str(tmp_path / "missing"))
    os.symlink(_chap(tmp_path, "username=a\npassword=b\n"), tmp_path / "link")
    with pytest.raises(InvalidArgument):
        read_chap(str(tmp_path / "link"))  # never followed


def test_nfs_mount_point_is_safe_and_unique():
    a = mount_point("/run/storaged", NfsSource(server="filer.example", export="/exports/pools", file="a.img"))
    assert a.startswith("/run/storaged/nfs/filer.example_exports_pools-")
    b = mount_point("/run/storaged", NfsSource(server="filer.example", export="/exports_pools", file="a.img"))
    assert a != b
    odd = mount_point("/run/storaged", NfsSource(server="fe80::1", export="/a b/../c", file="x"))
    name = os.path.basename(odd)
    assert os.path.dirname(odd) == "/run/storaged/nfs"
    assert all(c.isalnum() or c in "._-" for c in name) and not name.startswith(".")
    # Files on the same export share one mount.
    assert a == mount_point("/run/storaged", NfsSource(server="filer.example", export="/exports/pools",
                                                       file="b.img"))


def test_nfs_mount_argv_and_options():
    src = NfsSource(server="filer.example", export="/exports/pools", file="a.img")
    argv = mount_argv(src, "/run/storaged/nfs/x")
    assert argv == ["mount", "-t", "nfs", "-o", MOUNT_OPTIONS, "filer.example:/exports/pools",
                    "/run/storaged/nfs/x"]
    opts = MOUNT_OPTIONS.split(",")
    for needed in ("nosuid", "nodev", "noexec", "vers=4.2", "hard", "retry=0"):
        assert needed in opts
    assert any(o.startswith("timeo=") for o in opts)
    assert mount_argv(NfsSource(server="2001:db8::2", export="/e", file="f"), "/m")[5] == "[2001:db8::2]:/e"


def test_nfs_problem_without_touching_the_mount(tmp_path):
    src = NfsSource(server="filer.example", export="/exports/pools", file="a.img")
    backend = backend_for(src, str(tmp_path))
    assert isinstance(backend, NfsBackend)
    assert backend.path(src).startswith(str(tmp_path) + "/nfs/")
    assert backend.problem(src) == "NFS export filer.example:/exports/pools is not mounted"
    assert backend.device(src) is None


def test_only_network_sources_are_retried(tmp_path):
    iscsi = backend_for(IscsiSource(host="h", target=IQN), str(tmp_path))
    nfs = backend_for(NfsSource(server="h", export="/e", file="f"), str(tmp_path))
    from storaged.model.definitions import DeviceSource, FileSource
    assert iscsi.retried and nfs.retried
    assert not backend_for(FileSource(path="/x.img"), str(tmp_path)).retried
    assert not backend_for(DeviceSource(path="/dev/sdz"), str(tmp_path)).retried


async def test_engine_retries_only_degraded_pools_network_sources(tmp_path, monkeypatch):
    from storaged.errors import Degraded
    from storaged.model.definitions import FileSource, PoolDef
    from storaged.engine import Engine, Settings
    from storaged.model.state import Pool, PoolState
    DEGRADED, RUNNING = PoolState.DEGRADED, PoolState.RUNNING
    from storaged.sources.iscsi import IscsiBackend

    engine = Engine(Settings(config_dir=str(tmp_path / "etc"), state_dir=str(tmp_path / "lib"),
                             run_dir=str(tmp_path / "run")))
    net = IscsiSource(host="127.0.0.1", target=IQN, lun=1)
    local = FileSource(path=str(tmp_path / "gone.img"))
    pools = [Pool(definition=PoolDef(name=n, uuid=f"u{n}", volume_group=n, sources=srcs), state=st)
             for n, srcs, st in (("a", [net], DEGRADED), ("b", [local], DEGRADED),
                                 ("c", [IscsiSource(host="h", target=IQN, lun=2)], RUNNING))]
    engine.pools = {p.uuid: p for p in pools}
    tried, started, reachable = [], [], []

    async def up(self, src):
        tried.append(src)
        if not reachable:
            raise Degraded("not reachable")
        return "/dev/sdx"

    async def start_pools(pools, locked=False):
        started.extend(p.name for p in pools)

    monkeypatch.setattr(IscsiBackend, "up", up)
    monkeypatch.setattr(engine, "_start_pools", start_pools)
    await engine.retry_sources()
    assert tried == [net] and started == []  # still out of reach: no start
    reachable.append(True)
    await engine.retry_sources()
    assert tried == [net, net] and started == ["a"]  # back: the pool is started again


def test_nfs_mounts_run_in_the_hosts_namespace_under_systemd():
    """Under systemd the mount is a transient service of PID 1's (the host's
    mount namespace, not storaged.service's); without it, the mount itself.
    Every option is one the installed systemd-run knows."""
    import subprocess

    from storaged.system.host import in_host_namespace
    argv = mount_argv(NfsSource(server="filer.example", export="/e", file="f"), "/run/storaged/nfs/x")
    assert in_host_namespace(argv, "mount", 55, systemd=False) == argv
    wrapped = in_host_namespace(argv, "mount filer.example:/e", 55, systemd=True)
    assert wrapped[0] == "systemd-run" and wrapped[wrapped.index("--") + 1:] == argv
    for needed in ("--wait", "--pipe", "--collect", "--property=DefaultDependencies=no",
                   "--property=RuntimeMaxSec=55"):
        assert needed in wrapped
    helps = subprocess.run(["systemd-run", "--help"], capture_output=True, text=True).stdout
    for option in wrapped[1:wrapped.index("--")]:
        assert option.split("=", 1)[0] in helps, option


def test_read_error_only_for_a_failing_read():
    """A device that does not open is its source's problem(), one that reads is
    fine; the VM lab (faults.pv-io-errors) makes a real one fail with EIO."""
    from storaged.lvm.label import read_error
    here = os.path.dirname(os.path.abspath(__file__))
    assert read_error(os.path.join(here, "missing")) is None
    assert read_error(os.path.abspath(__file__)) is None
