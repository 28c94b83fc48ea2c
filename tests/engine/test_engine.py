"""The engine driven directly, without a bus, against real LVM (metadata-only)
and real loop devices: a failure here points at the engine, not at D-Bus."""
import json
import os
import subprocess
import tempfile

import pytest

from storaged.engine import Engine, Settings
from storaged.engine.journal import CREATE, Intent, Record
from storaged.errors import AlreadyExists, Busy, NotSupported
from storaged.model.state import PoolState
from tests.harness import MiB
from tests.lvmenv import cleanup, loops_under, lvm, make_lvm_system_dir


class Recorder:
    """A listener that writes down what it is told."""

    def __init__(self):
        self.events: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.events.append((name, *args))

    def changed(self, pool) -> set[str]:
        return {n for e in self.events if e[0] == "pool_changed" and e[1] is pool for n in e[2]}


@pytest.fixture
def base():
    path = tempfile.mkdtemp(prefix="storaged-engine-", dir="/tmp")
    old = os.environ.get("LVM_SYSTEM_DIR")
    os.environ["LVM_SYSTEM_DIR"] = make_lvm_system_dir(path)
    try:
        yield path
    finally:
        cleanup(path)
        if old is None:
            os.environ.pop("LVM_SYSTEM_DIR", None)
        else:
            os.environ["LVM_SYSTEM_DIR"] = old


async def started_engine(base: str) -> tuple[Engine, Recorder]:
    recorder = Recorder()
    engine = Engine(Settings(config_dir=f"{base}/etc", state_dir=f"{base}/lib",
                             run_dir=f"{base}/run", default_pool=False), listener=recorder)
    await engine.boot()
    return engine, recorder


def pool_xml(base: str, name: str, *files: str, size: str = "32M") -> str:
    pvs = "".join(f"<physical_volume type='file'><file size='{size}'>{base}/{f}</file>"
                  f"</physical_volume>" for f in files)
    return f"<pool type='lvm'><name>{name}</name>{pvs}</pool>"


def vgs() -> set[str]:
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_name").stdout
    return {v["vg_name"] for v in json.loads(out)["report"][0]["vg"]}


async def test_reconcile_follows_an_outside_lvcreate_and_says_what_changed(base):
    engine, recorder = await started_engine(base)
    try:
        pool = await engine.create(pool_xml(base, "rec", "rec.img"))
        assert pool.state is PoolState.RUNNING
        assert "State" in recorder.changed(pool)  # Start's State change is told
        recorder.events.clear()
        lvm("lvcreate", "--yes", "-n", "outside", "-L", "4m", "rec")
        await engine.refresh()
        [vol] = pool.volumes.values()
        assert vol.name == "outside" and vol.capacity == 4 * MiB and vol.pool_uuid == pool.uuid
        assert ("volume_added", pool, vol) in recorder.events
        assert recorder.changed(pool) == {"Volumes", "Allocation", "Available"}
        lvm("lvrename", "rec", "outside", "renamed")
        await engine.refresh()
        assert [e[3] for e in recorder.events if e[0] == "volume_changed"] == [{"Name", "Path"}]
    finally:
        engine.close()


async def test_a_failed_build_is_undone(base):
    engine, _ = await started_engine(base)
    try:
        with open(f"{base}/b.img", "wb") as f:  # there already, and not this pool's
            f.truncate(32 * MiB)
        pool = await engine.define(pool_xml(base, "undo", "a.img", "b.img"))
        with pytest.raises(AlreadyExists, match="b.img already exists"):
            await engine.build(pool)
        assert not os.path.exists(f"{base}/a.img") and os.path.exists(f"{base}/b.img")
        assert loops_under(base) == [] and "undo" not in vgs()
        assert Record.from_json(engine.store.record(pool.uuid)).created == {}
        assert pool.state is PoolState.INACTIVE
    finally:
        engine.close()


async def test_delete_keeps_what_it_did_not_make(base):
    engine, _ = await started_engine(base)
    try:
        pool = await engine.create(pool_xml(base, "keep", "keep.img"))
        await engine.allocate_volume(pool, "mine", 4 * MiB)
        lvm("lvcreate", "--yes", "-n", "theirs", "-L", "4m", "keep")
        await engine.stop(pool)
        with pytest.raises(Busy, match="theirs"):
            await engine.delete(pool)
        assert os.path.exists(f"{base}/keep.img")
        with open(f"{base}/disk.img", "wb") as f:
            f.truncate(32 * MiB)
        disk = subprocess.run(["losetup", "--find", "--show", f"{base}/disk.img"],
                              capture_output=True, text=True, check=True).stdout.strip()
        lvm("pvcreate", "--yes", disk)
        lvm("vgcreate", "admins", disk)
        adopted = await engine.define("<pool type='lvm'><name>adopt</name>"
                                      "<volume_group>admins</volume_group></pool>")
        with pytest.raises(NotSupported, match="did not create volume group 'admins'"):
            await engine.delete(adopted)
        assert "admins" in vgs()
    finally:
        engine.close()


async def test_recovery_rolls_back_an_interrupted_create(base):
    """As if the daemon died after vgcreate during CreatePool: the definition,
    the file, the PV and the VG exist, and the record says 'create'."""
    engine, _ = await started_engine(base)
    pool = await engine.create(pool_xml(base, "half", "half.img"))
    engine._set_intent(pool.uuid, Intent(CREATE))
    engine.close()
    assert "half" in vgs()
    for loop in loops_under(base):
        subprocess.run(["losetup", "--detach", loop], check=True)
    engine, recorder = await started_engine(base)  # the next start
    try:
        assert engine.pools == {}
        assert "half" not in vgs() and not os.path.exists(f"{base}/half.img")
        assert loops_under(base) == [] and not os.path.exists(f"{base}/etc/pools/half.xml")
        assert engine.store.records() == []
    finally:
        engine.close()
