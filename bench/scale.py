"""Scale: 100 pools of 100 volumes, and one pool of 10,000: start-up, GetManagedObjects,
detection latency of an outside lvcreate, idle CPU (goal < 1 % of a core). Figures printed.

Usage: .venv/bin/python bench/scale.py [--pools 100] [--per-pool 100] [--big 10000] [--idle-seconds 30]
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbus_fast import Message  # noqa: E402
from storaged.client.transport import PatientMessageBus  # noqa: E402
from bench.common import cpu_seconds, isolated_world, make_vg_with_lvs, median_p95  # noqa: E402
from bench.detect import Arrivals, detection  # noqa: E402
from tests.harness import MANAGER, ROOT, Daemon, MGR, POOL  # noqa: E402
from tests.harness import bus_call as call, rss_kib  # noqa: E402
from tests.lvmenv import cleanup  # noqa: E402


async def scenario(base, address, n_pools, per_pool, samples, idle):
    sub = os.path.join(base, f"{n_pools}x{per_pool}")
    os.makedirs(sub)
    t = time.perf_counter()
    vgs = []
    for i in range(n_pools):
        vg = f"sc{n_pools}p{i}x{os.getpid() % 1000}"
        _, img = make_vg_with_lvs(sub, vg, per_pool, spare=samples + 8)
        vgs.append((vg, img))
    fill = time.perf_counter() - t
    d = Daemon(sub, address, "--no-default-pool", "--log-level", "warning").start()
    bus = await PatientMessageBus(bus_address=address).connect()
    for vg, img in vgs:
        pool = await call(bus, MANAGER, MGR, "DefinePool", "s", [
            f"<pool type='lvm'><name>{vg}</name><physical_volume type='file'>"
            f"<file>{img}</file></physical_volume></pool>"])
        await call(bus, pool, POOL, "SetAutostart", "b", [True])
        await call(bus, pool, POOL, "Start")
    bus.disconnect()
    d.stop()
    d = Daemon(sub, address, "--no-default-pool", "--log-level", "warning")
    try:
        t = time.perf_counter()
        d.start(timeout=900)
        start = time.perf_counter() - t
        bus = await PatientMessageBus(bus_address=address).connect()
        gmo = []
        for _ in range(5):
            t = time.perf_counter()
            objs = await call(bus, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            gmo.append(time.perf_counter() - t)
        await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                               interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                               body=["type='signal',sender='org.storaged.Storaged1'"]))
        arrivals = Arrivals(bus)
        lat = await detection(arrivals, vgs[-1][0], samples)
        await asyncio.sleep(2)
        t0, c0 = time.perf_counter(), cpu_seconds(d.proc.pid)
        await asyncio.sleep(idle)
        used, wall = cpu_seconds(d.proc.pid) - c0, time.perf_counter() - t0
        print(f"\n{n_pools} pool(s) x {per_pool} volumes ({len(objs)} objects; VGs made in {fill:.0f} s)")
        print(f"  start-up to READY=1      {start * 1000:8.0f} ms")
        print(f"  GetManagedObjects        {median_p95(gmo)}")
        print(f"  detection (inotify)      {median_p95(lat)}")
        print(f"  idle CPU over {wall:.0f} s      {100 * used / wall:6.2f} % of one core (goal < 1 %)")
        print(f"  RSS                      {rss_kib(d.proc.pid) / 1024:8.1f} MiB")
        bus.disconnect()
    finally:
        d.stop()
        for vg, _ in vgs:  # 100 loop devices: give them back before the next scenario
            subprocess.run(["lvm", "vgremove", "--yes", "--force", vg], capture_output=True)
        cleanup(sub)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pools", type=int, default=100)
    ap.add_argument("--per-pool", type=int, default=100)
    ap.add_argument("--big", type=int, default=10000)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--idle-seconds", type=int, default=30)
    args = ap.parse_args()
    base, test_bus = isolated_world()
    try:
        await scenario(base, test_bus.address, args.pools, args.per_pool, args.samples, args.idle_seconds)
        await scenario(base, test_bus.address, 1, args.big, args.samples, args.idle_seconds)
    finally:
        test_bus.stop()
        cleanup(base)


if __name__ == "__main__":
    asyncio.run(main())
