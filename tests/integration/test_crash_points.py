"""Every crash point of every multi-step call, found by running it.

Each call runs once with recording wrappers on the daemon's PATH
(tests/crashpoints.py); then, for every command it ran that changes
something, the daemon is SIGKILLed before that command and again after it.
After each kill the daemon restarts and must converge: no loop device, VG,
LV, image file, definition or pending intent that no pool accounts for, and
then the same call works. A new call is one line in OPS.
"""
from __future__ import annotations

import glob
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import pytest
from dbus_fast import DBusError

from tests.crashpoints import Crasher, make_wrappers, points
from tests.harness import MANAGER, MGR, POOL, MiB, wait_for
from tests.lvmenv import loops_under, lvm

JOB = "org.storaged.Storaged1.Job"
VOLUMES = "<volume><name>v</name><capacity unit='M'>4</capacity></volume>"
TOTAL = {"points": 0}


@pytest.fixture(scope="module")
def bindir(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("crashbin"))
    make_wrappers(d)
    return d


@dataclass
class Case:
    """One crash point's pool: its name, its files, its object path once it has one."""

    world: object
    tag: str
    pool: str = ""

    @property
    def name(self):
        return f"{self.world.prefix}{self.tag}"

    def xml(self, *files, volumes=VOLUMES):
        return self.world.pool_xml(self.name, *[(f"{self.tag}{f}.img", "16M") for f in files],
                                   volumes=volumes)

    def file(self, f):
        return self.world.path(f"{self.tag}{f}.img")

    def pv_xml(self, f):
        return f"<physical_volume type='file'><file size='16M'>{self.file(f)}</file></physical_volume>"


async def _wait_job(client, job):
    async def done():
        return await client.get(job, JOB, "Completed")
    deadline = time.monotonic() + 60
    while not await done():
        assert time.monotonic() < deadline, "the job never completed"
        await _sleep()
    assert await client.get(job, JOB, "Error") == ""


async def _sleep():
    import asyncio
    await asyncio.sleep(0.1)


# ------------------------------------------------------------------ setups

async def nothing(client, c):
    pass


async def defined(client, c):
    c.pool = await client.call(MANAGER, MGR, "DefinePool", "s", [c.xml(1, 2)])


async def running(client, c):
    c.pool = await client.call(MANAGER, MGR, "CreatePool", "s", [c.xml(1, 2)])


async def stopped(client, c):
    await running(client, c)
    await client.call(c.pool, POOL, "Stop")


# ------------------------------------------------------------------ calls

async def create_pool(client, c):
    c.pool = await client.call(MANAGER, MGR, "CreatePool", "s", [c.xml(1, 2)])


def pool_call(member):
    async def call(client, c):
        await client.call(c.pool, POOL, member)
    return call


async def add_pv(client, c):
    await client.call(c.pool, POOL, "AddPhysicalVolume", "s", [c.pv_xml(3)])


async def remove_pv(client, c):
    await _wait_job(client, await client.call(c.pool, POOL, "RemovePhysicalVolume", "s", [c.file(2)]))


async def deleted(client, c):
    return c.name not in vgs() and not glob.glob(c.world.path(f"{c.tag}*.img"))


async def pv_removed(client, c):
    return c.file(2) not in await client.call(c.pool, POOL, "GetXML") and not os.path.exists(c.file(2))


@dataclass
class Op:
    """A multi-step call: the state it starts from, the call (to its end), and
    for a call the restart may finish (roll forward), how to tell it is done."""

    name: str
    setup: Callable[..., Awaitable]
    call: Callable[..., Awaitable]
    done: Callable[..., Awaitable] | None = None


OPS = [
    Op("CreatePool", nothing, create_pool),
    Op("Build", defined, pool_call("Build")),
    Op("Start", stopped, pool_call("Start")),
    Op("Stop", running, pool_call("Stop")),
    Op("Delete", stopped, pool_call("Delete"), deleted),
    Op("AddPhysicalVolume", running, add_pv),
    Op("RemovePhysicalVolume", running, remove_pv, pv_removed),
]


# ------------------------------------------------------------------ convergence

def vgs() -> set[str]:
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_name").stdout
    return {v["vg_name"] for v in json.loads(out)["report"][0]["vg"]}


def lv_names(vg) -> set[str]:
    out = json.loads(lvm("lvs", "--reportformat", "json", "-o", "lv_name", vg).stdout)
    return {lv["lv_name"] for lv in out["report"][0]["lv"]}


def backing(dev: str) -> str:
    with open(f"/sys/block/{os.path.basename(dev)}/loop/backing_file") as f:
        return f.read().strip()


async def assert_converged(world, client, where):
    """Everything on the machine is accounted for by a pool, and no intent is left."""
    pools = await client.get(MANAGER, MGR, "Pools")
    files_of, vg_of, state_of = {}, {}, {}
    for p in pools:
        props = await client.get_all(p, POOL)
        state_of[p], vg_of[p] = props["State"], props["VolumeGroup"]
        files_of[p] = set(re.findall(r"<file[^>]*>([^<]+)</file>", await client.call(p, POOL, "GetXML")))
        if props["State"] == "running":
            assert lv_names(props["VolumeGroup"]) == {
                (await client.get(v, "org.storaged.Storaged1.Volume", "Name")) for v in props["Volumes"]}, where
    loops = [backing(d) for d in loops_under(world.base)]
    assert len(loops) == len(set(loops)), f"{where}: a file on two loop devices: {loops}"
    up = set().union(*[files_of[p] for p in pools if state_of[p] in ("running", "degraded")])
    assert set(loops) == up, f"{where}: loop devices {loops}, files of running pools {up}"
    assert vgs() <= set(vg_of.values()), f"{where}: a VG no pool has: {vgs()} vs {vg_of}"
    images = set(glob.glob(world.path("*.img")))
    assert images <= set().union(*files_of.values()), f"{where}: orphan files {images}"
    defs = glob.glob(world.path("etc/pools/*.xml"))
    assert len(defs) == len(pools), f"{where}: definitions {defs} vs pools {pools}"
    for rec in glob.glob(world.path("lib/pools/*.json")):
        with open(rec) as f:
            assert json.load(f).get("intent") is None, f"{where}: intent left in {rec}"


async def remove_everything(world, client):
    for p in await client.get(MANAGER, MGR, "Pools"):
        await client.call(p, POOL, "Stop")
        try:
            await client.call(p, POOL, "Delete")
        except DBusError as exc:
            assert exc.type.endswith("NotSupported"), exc.text  # never built: nothing to delete
        await client.call(p, POOL, "Undefine")
    assert vgs() == set() and loops_under(world.base) == [] and not glob.glob(world.path("*.img"))


async def crash_at(world, client, crasher, op, case, point):
    """One crash point: set up, kill at `point`, restart, converge, the call again."""
    await op.setup(client, case)
    crasher.arm(point)
    try:
        await op.call(client, case)
    except DBusError:
        pass  # NoReply: the daemon died
    crasher.disarm()
    assert await wait_for(crasher.killed, 10), f"{op.name} {point}: the wrapper never fired"
    daemon = world.daemon(env=crasher.env)
    where = f"{op.name} killed {crasher.killed()!r}"
    await assert_converged(world, client, where)
    # Rolled back: the same call now works. Rolled forward: it is done.
    if not (op.done and await op.done(client, case)):
        try:
            await op.call(client, case)
        except DBusError as exc:
            pytest.fail(f"{where}: then {op.name} failed: {exc.type}: {exc.text}\n{daemon.log()}")
        assert op.done is None or await op.done(client, case), f"{where}: {op.name} not done"
    await assert_converged(world, client, f"{where}, then {op.name} again")
    await remove_everything(world, client)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_every_crash_point_converges(world, client, bindir, op):
    crasher = Crasher(world.base, bindir)
    daemon = world.daemon(env=crasher.env)
    rec = Case(world, "rec")
    await op.setup(client, rec)
    crasher.arm()
    await op.call(client, rec)
    crasher.disarm()
    found = points(crasher.recorded(daemon.proc.pid))
    assert found, f"{op.name} ran no command that changes anything"
    await remove_everything(world, client)
    for i, point in enumerate(found):
        await crash_at(world, client, crasher, op, Case(world, f"c{i}"), point)
    TOTAL["points"] += len(found)
    print(f"{op.name}: {len(found)} crash points: {found}")
