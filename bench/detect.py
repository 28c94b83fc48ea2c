"""How fast storaged notices changes made outside it, and what that costs.

  detection latency of an outside lvcreate (exit of lvcreate -> InterfacesAdded
  received), median and p95, at 0 and 10,000 LVs (goals at 10,000: 100 ms with inotify, 1 s polling), with LVM's backups on (inotify)
  and off (the fingerprint poll); LVM calls and time per refresh at 1,000 and
  10,000 LVs; the daemon's idle CPU over a minute.

The LVs are written in one `vgcfgrestore` of generated
metadata (creating them one by one would take minutes), on a VG adopted by a
pool that names only its <volume_group>.

Usage: .venv/bin/python bench/detect.py [--idle-seconds 60] [--big 10000] [--fills 0,10000]
"""
import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbus_fast import Message, MessageType  # noqa: E402

from storaged.client.transport import PatientMessageBus  # noqa: E402
from bench import common  # noqa: E402
from bench.common import cpu_seconds, isolated_world, median_p95  # noqa: E402
from tests.harness import MANAGER, Daemon, MGR, POOL  # noqa: E402
from tests.harness import bus_call as call  # noqa: E402
from tests.lvmenv import cleanup, lvm  # noqa: E402


def make_vg_with_lvs(base, vg, count):
    """A VG on a loop file with a large metadata area, holding `count` 1-extent LVs."""
    return common.make_vg_with_lvs(base, vg, count)[0]


async def lvm_async(*args):
    """lvm without blocking the event loop, so that a signal is timed when it arrives."""
    proc = await asyncio.create_subprocess_exec(
        "lvm", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1", "LC_ALL": "C"})
    await proc.wait()


class Arrivals:
    """When each volume name first arrived in an InterfacesAdded signal."""

    def __init__(self, bus):
        self.added = {}
        bus.add_message_handler(self._on)

    def _on(self, msg):
        if msg.message_type == MessageType.SIGNAL and msg.member == "InterfacesAdded":
            vol = msg.body[1].get("org.storaged.Storaged1.Volume")
            if vol:
                self.added.setdefault(vol["Name"].value, time.perf_counter())
        return False


async def detection(arrivals, vg, n):
    samples = []
    for _ in range(n):
        name = f"det{secrets.token_hex(3)}"
        await lvm_async("lvcreate", "--yes", "-n", name, "-L", "4m", vg)
        done = time.perf_counter()  # negative latency: on the bus before lvcreate had exited
        for _ in range(1000):
            if name in arrivals.added:
                break
            await asyncio.sleep(0.002)
        samples.append(arrivals.added.get(name, time.perf_counter()) - done)
        lvm("lvremove", "--yes", f"{vg}/{name}")
        await asyncio.sleep(0.6)  # let the removal settle before the next sample
    return samples


async def measure(base, address, label, backups, fill, samples):
    conf = os.path.join(os.environ["LVM_SYSTEM_DIR"], "lvm.conf")
    with open(conf) as f:
        original = f.read()
    if not backups:
        with open(conf, "a") as f:
            f.write("backup {\n    backup = 0\n    archive = 0\n}\n")
    vg = "det" + secrets.token_hex(3)
    make_vg_with_lvs(base, vg, fill)
    d = Daemon(base, address, "--no-default-pool", "--log-level", "debug").start()
    try:
        bus = await PatientMessageBus(bus_address=address).connect()
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                               body=["type='signal',sender='org.storaged.Storaged1'"]))
        arrivals = Arrivals(bus)
        pool = await call(bus, MANAGER, MGR, "DefinePool", "s",
                          [f"<pool type='lvm'><name>{vg}</name></pool>"])
        await call(bus, pool, POOL, "Start")
        lat = await detection(arrivals, vg, samples)
        print(f"  {label:<44} {median_p95(lat)}")
        bus.disconnect()
    finally:
        d.stop()
        with open(conf, "w") as f:
            f.write(original)
    return vg


async def refresh_cost(base, address, count):
    vg = "ref" + secrets.token_hex(3)
    make_vg_with_lvs(base, vg, count)
    d = Daemon(base, address, "--no-default-pool", "--log-level", "debug")
    d.start(timeout=300)
    try:
        bus = await PatientMessageBus(bus_address=address).connect()
        pool = await call(bus, MANAGER, MGR, "DefinePool", "s", [f"<pool type='lvm'><name>{vg}</name></pool>"])
        t = time.perf_counter()
        await call(bus, pool, POOL, "Start")
        first = time.perf_counter() - t
        times = []
        for _ in range(5):
            t = time.perf_counter()
            await call(bus, pool, POOL, "Refresh")
            times.append(time.perf_counter() - t)
        with open(d.log_path) as f:
            text = f.read()
        calls_last = text[text.rfind("calls Refresh"):].count("run: ['lvm'")
        t = time.perf_counter()
        lvm("lvs", "--reportformat", "json", vg)
        bare = time.perf_counter() - t
        print(f"  {count:>6} LVs: Refresh {median_p95(times)}; LVM calls per refresh: {calls_last}; "
              f"first Start (exports every object) {first:.2f} s; one bare `lvs`: {bare * 1000:.0f} ms")
        bus.disconnect()
        return d
    except Exception:
        d.stop()
        raise


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--fills", default="0,10000")
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--big", type=int, default=10000)
    args = ap.parse_args()
    base, test_bus = isolated_world()
    try:
        print("detection latency of an outside lvcreate (lvcreate exits -> InterfacesAdded arrives)")
        for fill in (int(x) for x in args.fills.split(",")):
            for backups in (True, False):
                sub = tempfile.mkdtemp(prefix="run-", dir=base)
                await measure(sub, test_bus.address,
                              f"{fill} LVs, " + ("inotify on LVM's backups" if backups else "backups off: PV fingerprint poll"),
                              backups, fill, args.samples)
        print("\nrefresh cost (one Refresh call = one LVM report)")
        d = None
        for count in (1000, args.big):
            sub = tempfile.mkdtemp(prefix="ref-", dir=base)
            if d:
                d.stop()
            d = await refresh_cost(sub, test_bus.address, count)
        t0, c0 = time.perf_counter(), cpu_seconds(d.proc.pid)
        await asyncio.sleep(args.idle_seconds)
        used = cpu_seconds(d.proc.pid) - c0
        wall = time.perf_counter() - t0
        print(f"\nidle CPU with {args.big} LVs over {wall:.0f} s: {used:.2f} s = {100 * used / wall:.2f} % of one core")
        d.stop()
    finally:
        test_bus.stop()
        cleanup(base)


if __name__ == "__main__":
    asyncio.run(main())
