"""storaged benchmarks: figures printed, not asserted.

  AllocateVolume over D-Bus against bare `lvcreate` of the same size, pair by
  pair in one run, with 0 and with 1,000 LVs in the VG; start-up to READY=1
  with 1,000 LVs against one `lvs` of them; GetManagedObjects with 1,000
  volumes; the daemon's RSS.

Runs on the same real parts as the tests (metadata-only LVM on a loop device,
a private dbus-daemon). Usage: make bench  (or .venv/bin/python bench/run.py [--lvs N] [--pairs N])
"""
import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbus_fast import Message  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from bench.common import isolated_world, median_p95  # noqa: E402
from tests.harness import BUS_NAME, MANAGER, ROOT, Daemon, MGR, POOL, MiB  # noqa: E402
from tests.harness import bus_call as call, rss_kib  # noqa: E402
from tests.lvmenv import cleanup, lvm  # noqa: E402


async def pairs(bus, pool, vg, n, tag):
    """Alternate bare lvcreate and AllocateVolume; remove each after timing it."""
    bare, dbus = [], []
    for i in range(n):
        t = time.perf_counter()
        lvm("lvcreate", "--yes", "--name", f"bare{tag}{i}", "--size", f"{4 * MiB}b", vg)
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        await call(bus, pool, POOL, "AllocateVolume", "sta{sv}", [f"bus{tag}{i}", 4 * MiB, {}])
        dbus.append(time.perf_counter() - t)
        lvm("lvremove", "--yes", "--force", f"{vg}/bare{tag}{i}")
        await call(bus, pool, POOL, "DeallocateVolume", "s", [f"bus{tag}{i}"])
    ratio = statistics.median(dbus) / statistics.median(bare)
    return bare, dbus, ratio


def fill(vg, count):
    """count LVs through one lvm shell: much faster than count processes."""
    script = "".join(f"lvcreate --yes --name fill{i} --size 4m {vg}\n" for i in range(count))
    subprocess.run(["lvm"], input=script, text=True, capture_output=True, check=True,
                   env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1"})


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lvs", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=30)
    args = ap.parse_args()

    base, test_bus = isolated_world()
    daemons = []
    try:
        d = Daemon(base, test_bus.address, "--no-default-pool", "--log-level", "warning")
        daemons.append(d.start())
        bus = await MessageBus(bus_address=test_bus.address).connect()
        vg = "bench" + os.urandom(3).hex()
        img = os.path.join(base, "bench.img")
        size = (args.lvs + args.pairs * 2 + 64) * 4 * MiB
        xml = (f"<pool type='lvm'><name>{vg}</name><physical_volume type='file'>"
               f"<file size='{size}'>{img}</file></physical_volume></pool>")
        pool = await call(bus, MANAGER, MGR, "CreatePool", "s", [xml])
        await call(bus, pool, POOL, "SetAutostart", "b", [True])
        print(f"storaged benchmarks ({os.cpu_count()} cores; metadata-only LVM on a loop device)")

        for i in range(3):  # warm-up: page cache, first-call costs
            await call(bus, pool, POOL, "AllocateVolume", "sta{sv}", [f"warm{i}", 4 * MiB, {}])
            await call(bus, pool, POOL, "DeallocateVolume", "s", [f"warm{i}"])

        bare0, bus0, r0 = await pairs(bus, pool, vg, args.pairs, "a")
        print("\n0 LVs in the VG")
        print(f"  bare lvcreate          {median_p95(bare0)}")
        print(f"  AllocateVolume (D-Bus) {median_p95(bus0)}")
        print(f"  ratio of medians       {r0:.3f}  (goal <= 1.15)")

        t = time.perf_counter()
        fill(vg, args.lvs)
        fill_s = time.perf_counter() - t
        await call(bus, MANAGER, MGR, "Refresh")
        reply = await bus.call(Message(destination=BUS_NAME, path=pool,
                                       interface="org.freedesktop.DBus.Properties", member="Get",
                                       signature="ss", body=[POOL, "Volumes"]))
        n_vols = len(reply.body[0].value)
        print(f"\nfilled the VG with {args.lvs} LVs out of band in {fill_s:.1f} s; daemon sees {n_vols}")

        bare1, bus1, r1 = await pairs(bus, pool, vg, args.pairs, "b")
        print(f"\n{n_vols} LVs in the VG")
        print(f"  bare lvcreate          {median_p95(bare1)}")
        print(f"  AllocateVolume (D-Bus) {median_p95(bus1)}")
        print(f"  ratio of medians       {r1:.3f}  (goal <= 1.15)")

        gmo = []
        for _ in range(10):
            t = time.perf_counter()
            objs = await call(bus, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
            gmo.append(time.perf_counter() - t)
        print(f"\nGetManagedObjects with {len(objs)} objects: {median_p95(gmo)}")
        print(f"daemon RSS with {n_vols} volumes: {rss_kib(d.proc.pid) / 1024:.1f} MiB")

        lvs_t = []
        for _ in range(5):
            t = time.perf_counter()
            lvm("lvs", "--reportformat", "json", vg)
            lvs_t.append(time.perf_counter() - t)
        starts = []
        for _ in range(3):
            d.stop()
            d = Daemon(base, test_bus.address, "--no-default-pool", "--log-level", "warning")
            daemons.append(d)
            t = time.perf_counter()
            d.start()
            starts.append(time.perf_counter() - t)
        print(f"\nstart-up to READY=1 with {n_vols} LVs: {median_p95(starts)}")
        print(f"one `lvs` of them:                  {median_p95(lvs_t)}")
        print(f"daemon RSS after start-up: {rss_kib(d.proc.pid) / 1024:.1f} MiB")
        bus.disconnect()
    finally:
        for d in daemons:
            d.stop()
        test_bus.stop()
        cleanup(base)


if __name__ == "__main__":
    asyncio.run(main())
