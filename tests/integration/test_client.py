"""storaged.client, the public library, against a real daemon on the test's own bus."""
import asyncio
import os
import shutil
import subprocess
import sys

import pytest

from storaged import api, client as sc
from storaged.client import blocking
from tests.harness import MiB, wait_for

# lvresize of a volume named hang-* hangs until the job is cancelled.
HANG_RESIZE = """#!/bin/sh
if [ "$1" = lvresize ]; then case "$*" in *hang-*) sleep 600 ;; esac; fi
exec {real} "$@"
"""


def hang_resize_env(world) -> dict:
    """The daemon's environment for HANG_RESIZE: the wrapper first on its PATH."""
    bindir = world.path("bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "lvm"), "w") as f:
        f.write(HANG_RESIZE.format(real=shutil.which("lvm")))
    os.chmod(os.path.join(bindir, "lvm"), 0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def test_imports_no_lxml_and_nothing_of_the_daemon():
    """storaged.client must work where lxml is not installed: an import of lxml fails here."""
    code = ("import sys\n"
            "class NoLxml:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'lxml': raise ImportError('no lxml here')\n"
            "sys.meta_path.insert(0, NoLxml())\n"
            "import storaged.client, storaged.client.blocking\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('storaged', 'lxml')))))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    loaded = set(r.stdout.split())
    assert "storaged.client" in loaded
    assert loaded <= {"storaged", "storaged.api"} | {m for m in loaded if m.startswith("storaged.client")}, loaded


def test_one_exception_per_error_kind():
    assert set(sc.ERRORS) == set(api.ERROR_KINDS)
    for kind, cls in sc.ERRORS.items():
        assert issubclass(cls, sc.Error) and cls.kind == kind and getattr(sc, kind) is cls
        assert cls("x").name == f"{api.ERROR_PREFIX}.{kind}"
    err = sc.error_from("org.freedesktop.DBus.Error.AccessDenied", "no")
    assert isinstance(err, sc.NotAuthorized) and err.name.endswith("AccessDenied") and err.message == "no"
    assert isinstance(sc.error_from("org.freedesktop.DBus.Error.ServiceUnknown", ""), sc.NotRunning)
    assert isinstance(sc.error_from(api.ERROR_PREFIX + ".Nonsense", ""), sc.Failed)


def test_attributes_come_from_the_api_tables():
    for cls, table in ((sc.Pool, api.POOL_PROPERTIES), (sc.Volume, api.VOLUME_PROPERTIES),
                       (sc.Job, api.JOB_PROPERTIES)):
        for prop in table:
            attr = getattr(cls, sc.objects.snake(prop.name))
            assert prop.doc in attr.__doc__, (cls, prop.name)
    pool = sc.Pool(None, "/p", {"StateReason": "gone", "PhysicalVolumes": ["/dev/x"]})
    assert pool.state_reason == "gone" and pool.physical_volumes == ["/dev/x"]
    with pytest.raises(AttributeError, match="load"):
        pool.capacity


def test_the_bus_comes_from_storaged_bus_when_none_is_named(monkeypatch):
    monkeypatch.delenv(sc.BUS_ENV, raising=False)
    assert sc.bus_address() == "system"
    monkeypatch.setenv(sc.BUS_ENV, "unix:path=/run/elsewhere")
    assert sc.bus_address() == "unix:path=/run/elsewhere"
    assert sc.bus_address("session") == "session"


async def test_a_pool_and_its_volumes_through_the_client(world, monkeypatch):
    world.daemon()
    monkeypatch.setenv(sc.BUS_ENV, world.address)  # no address given: the variable's
    name = f"{world.prefix}lib"
    async with sc.connect() as storaged:
        assert await storaged.version() == api.__version__
        pool = await storaged.create_pool(world.pool_xml(name, ("lib.img", "64M")))
        assert pool.name == name and pool.state == "running" and pool.capacity > 32 * MiB
        assert pool.object_path == api.pool_path(pool.uuid)
        vol = await pool.allocate_volume("v1", 8 * MiB)
        await vol.load()
        assert vol.capacity == 8 * MiB and vol.path == f"/dev/{name}/v1" and vol.pool == pool.object_path
        assert await storaged.lookup_volume(name, "v1") == vol
        assert [v.name for v in await pool.list_volumes()] == ["v1"]
        assert [p.name for p in await storaged.pools()] == [name]
        assert "<name>v1</name>" in await vol.get_xml()
        with pytest.raises(sc.AlreadyExists) as info:
            await pool.allocate_volume("v1", MiB)
        assert info.value.kind == "AlreadyExists" and info.value.name == api.ERROR_PREFIX + ".AlreadyExists"
        assert "v1" in info.value.message
        with pytest.raises(sc.NotFound):
            await storaged.lookup_pool(f"{world.prefix}nope")
        seen = []
        job = await vol.resize(16 * MiB)
        await job.wait(seen.append)
        assert job.completed and job.error == "" and (await vol.load()).capacity == 16 * MiB
        assert not seen or seen[-1] == 1.0
        with pytest.raises(sc.InvalidArgument):
            await vol.resize(4 * MiB)  # shrinking needs force
        await (await vol.resize(4 * MiB, force=True)).wait()
        assert await vol.get("Capacity") == 4 * MiB
        await pool.deallocate_volume("v1")
        await pool.stop()
        await pool.delete()
        await pool.undefine()
        assert await storaged.pools() == []


async def test_a_failed_job_raises_its_own_kind(world):
    world.daemon(env=hang_resize_env(world))
    async with sc.connect(world.address) as storaged:
        pool = await storaged.create_pool(world.pool_xml(f"{world.prefix}jf", ("jf.img", "64M")))
        vol = await pool.allocate_volume("hang-1", 4 * MiB)
        job = await vol.resize(8 * MiB)
        waiting = asyncio.ensure_future(job.wait())
        await job.cancel()
        with pytest.raises(sc.Cancelled) as info:
            await asyncio.wait_for(waiting, 30)
        await job.load()
        assert info.value.kind == "Cancelled" and info.value.name == job.error_name
        assert "cancelled" in info.value.message and job.error == info.value.message


async def test_events_say_what_happened_and_when_storaged_comes_and_goes(world):
    d = world.daemon()
    name = f"{world.prefix}ev"
    async with sc.connect(world.address) as storaged:
        async with storaged.events() as events:
            pool = await storaged.create_pool(world.pool_xml(name, ("ev.img", "32M")))
            vol = await pool.allocate_volume("e1", 4 * MiB)
            await (await vol.resize(8 * MiB)).wait()
            got = []

            async def until(pred):
                while not any(pred(e) for e in got):
                    got.append(await asyncio.wait_for(events.__anext__(), 30))
            await until(lambda e: e.type == "completed")
            added = {(e.kind, e.path) for e in got if e.type == "added"}
            assert ("pool", pool.object_path) in added and ("volume", vol.object_path) in added
            [pool_added] = [e for e in got if e.type == "added" and e.path == pool.object_path]
            assert pool_added.properties["Name"] == name
            assert any(e.type == "changed" and e.path == pool.object_path and "Allocation" in e.properties
                       for e in got)
            d.stop()
            await until(lambda e: e.type == "stopped" and e.kind == "storaged")
            world.daemon()
            await until(lambda e: e.type == "started")


def test_the_blocking_wrapper(world):
    world.daemon()
    name = f"{world.prefix}blk"
    with blocking.connect(world.address) as storaged:
        pool = storaged.create_pool(world.pool_xml(name, ("blk.img", "32M")))
        assert pool.name == name and pool.state == "running"
        vol = pool.allocate_volume("b1", 4 * MiB)
        assert storaged.lookup_volume(name, "b1").capacity == 4 * MiB
        assert [v.object_path for v in pool.list_volumes()] == [vol.object_path]
        with pytest.raises(sc.Busy):
            pool.undefine()  # a started pool


async def test_not_running_and_no_bus(world):
    async with sc.connect(world.address) as storaged:
        assert not await storaged.is_running()
        with pytest.raises(sc.NotRunning):
            await storaged.version()
    with pytest.raises(sc.Failed, match="cannot connect to the bus at"):
        await sc.connect("unix:path=" + world.path("no-such-socket"))
