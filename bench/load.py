"""Reads under load, and memory over many cycles: figures printed, not asserted.

  throughput and p50/p99 latency of property reads (Get of a pool's Available)
  while 8 clients allocate and delete volumes in one pool; the daemon's RSS
  before and after N allocate/delete cycles.

Usage: .venv/bin/python bench/load.py [--seconds 20] [--cycles 10000]
"""
import argparse
import asyncio
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from storaged.client.transport import PatientMessageBus  # noqa: E402
from bench.common import isolated_world  # noqa: E402
from tests.harness import MANAGER, Daemon, MGR, POOL, MiB  # noqa: E402
from tests.harness import bus_call as call, rss_kib  # noqa: E402
from tests.lvmenv import cleanup  # noqa: E402


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--cycles", type=int, default=10000)
    args = ap.parse_args()
    base, test_bus = isolated_world()
    d = Daemon(base, test_bus.address, "--no-default-pool", "--log-level", "warning")
    try:
        d.start()
        bus = await PatientMessageBus(bus_address=test_bus.address).connect()
        pool = await call(bus, MANAGER, MGR, "CreatePool", "s", [
            f"<pool type='lvm'><name>load{os.getpid()}</name><physical_volume type='file'>"
            f"<file size='2G'>{base}/load.img</file></physical_volume></pool>"])
        writers = [await PatientMessageBus(bus_address=test_bus.address).connect() for _ in range(8)]
        stop = False
        cycles = [0]

        async def churn(i, b):
            n = 0
            while not stop:
                await call(b, pool, POOL, "AllocateVolume", "sta{sv}", [f"w{i}n{n}", 4 * MiB, {}])
                await call(b, pool, POOL, "DeallocateVolume", "s", [f"w{i}n{n}"])
                n += 1
                cycles[0] += 1

        lat = []

        async def read():
            end = time.perf_counter() + args.seconds
            while time.perf_counter() < end:
                t = time.perf_counter()
                await call(bus, pool, "org.freedesktop.DBus.Properties", "Get", "ss", [POOL, "Available"])
                lat.append(time.perf_counter() - t)

        tasks = [asyncio.ensure_future(churn(i, b)) for i, b in enumerate(writers)]
        await read()
        stop = True
        await asyncio.gather(*tasks)
        lat.sort()
        print(f"reads while 8 clients allocate and delete ({args.seconds:.0f} s, {cycles[0]} cycles done):")
        print(f"  {len(lat) / args.seconds:.0f} reads/s, p50 {statistics.median(lat) * 1000:.2f} ms, "
              f"p99 {lat[int(len(lat) * 0.99)] * 1000:.2f} ms, max {lat[-1] * 1000:.1f} ms")

        start_rss = rss_kib(d.proc.pid)
        t = time.perf_counter()
        done = 0
        per_client = args.cycles // 8

        async def cycle(i, b):
            nonlocal done
            for n in range(per_client):
                await call(b, pool, POOL, "AllocateVolume", "sta{sv}", [f"m{i}n{n}", 4 * MiB, {}])
                await call(b, pool, POOL, "DeallocateVolume", "s", [f"m{i}n{n}"])
                done += 1
        await asyncio.gather(*(cycle(i, b) for i, b in enumerate(writers)))
        took = time.perf_counter() - t
        print(f"\nmemory over {done} allocate/delete cycles ({took:.0f} s, {done / took:.1f} cycles/s):")
        print(f"  RSS before {start_rss / 1024:.1f} MiB, after {rss_kib(d.proc.pid) / 1024:.1f} MiB")
        for b in writers:
            b.disconnect()
        bus.disconnect()
    finally:
        d.stop()
        test_bus.stop()
        cleanup(base)


if __name__ == "__main__":
    asyncio.run(main())
