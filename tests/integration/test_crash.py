"""Crash safety of a single LVM command: kill -9 the daemon around lvcreate;
the next start converges to what LVM holds. Multi-step calls are killed at
every command they run in test_crash_points.py.

The kill comes from an `lvm` wrapper the test puts first on the daemon's
PATH: at the chosen command it SIGKILLs its parent (the daemon), before or
after running the real command. The product knows nothing of it."""
import asyncio
import json
import os
import shutil

import pytest
from dbus_fast import DBusError

from tests.harness import MANAGER, MGR, POOL, MiB
from tests.lvmenv import loops_under, lvm


WRAPPER = """#!/bin/sh
# Test fault injection: SIGKILL the daemon at $STORAGED_TEST_KILL_AT (once).
real={real}
case " $* " in
  *" {step} "*)
    if [ ! -e "{marker}" ]; then
      touch "{marker}"
      if [ "{when}" = after ]; then "$real" "$@"; fi
      kill -9 "$PPID"
      exit 1
    fi ;;
esac
exec "$real" "$@"
"""


def killer_env(world, tool, step, when):
    bindir = world.path("bin")
    os.makedirs(bindir, exist_ok=True)
    for name in ("lvm", "losetup"):
        path = os.path.join(bindir, name)
        if name == tool:
            text = WRAPPER.format(real=shutil.which(name), step=step, when=when,
                                  marker=world.path(f"killed-{name}"))
        else:
            text = f"#!/bin/sh\nexec {shutil.which(name)} \"$@\"\n"
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}"}


def vgs():
    out = lvm("vgs", "--reportformat", "json", "-o", "vg_name").stdout
    return {v["vg_name"] for v in json.loads(out)["report"][0]["vg"]}


async def call_expecting_death(client, *args):
    try:
        await client.call(*args)
    except DBusError:
        return  # the daemon died mid-call: NoReply
    pytest.fail("the daemon survived its kill")


@pytest.mark.parametrize("when", ["before", "after"])
async def test_kill_during_allocate_volume_converges_to_lvm(world, client, when):
    d = world.daemon()
    vg = f"{world.prefix}alloc"
    pool = await client.call(MANAGER, MGR, "CreatePool", "s", [world.pool_xml(vg, ("al.img", "32M"))])
    await client.call(pool, POOL, "SetAutostart", "b", [True])
    d.stop()
    world.daemon(env=killer_env(world, "lvm", "lvcreate", when))
    await call_expecting_death(client, pool, POOL, "AllocateVolume", "sta{sv}", ["v", 4 * MiB, {}])
    world.daemon()
    out = json.loads(lvm("lvs", "--reportformat", "json", "-o", "lv_name", vg).stdout)
    lvs = {lv["lv_name"] for lv in out["report"][0]["lv"]}
    assert lvs == ({"v"} if when == "after" else set())  # lvcreate commits or not, atomically
    vols = await client.get(pool, POOL, "Volumes")
    assert len(vols) == len(lvs)
    assert len(loops_under(world.base)) == 1
