"""storaged benchmarks, all of them in one run (`make bench`): figures and ratios printed, nothing asserted.

  Here: AllocateVolume over D-Bus against bare `lvcreate` of the same size,
  pair by pair, at 0, 1,000 and 10,000 LVs with LVM's backups on and off;
  start-up to READY=1 at 1,000 and 10,000 LVs against the same LVM work run
  bare (loop attach, vgscan, vgchange -ay, one report); import time and RSS of
  each heavy module. Then, each in its own process: bench/peers.py (lvmdbusd
  and libvirtd side by side), bench/detect.py, bench/scale.py and bench/load.py.

Runs on the same real parts as the tests (metadata-only LVM on a loop device,
a private dbus-daemon). Usage: make bench  (or .venv/bin/python bench/run.py
[--only alloc,startup,imports,peers,detect,scale,load] [--pairs N] [--cycles N])
"""
import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from dbus_fast import Message, MessageType  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from bench.common import isolated_world, make_vg_with_lvs, median_p95, set_backups  # noqa: E402
from tests.harness import MANAGER, Daemon, MGR, POOL, VOL, MiB, wait_for  # noqa: E402
from tests.harness import bus_call as call, rss_kib  # noqa: E402
from tests.lvmenv import cleanup, loops_under, lvm  # noqa: E402

SIZES = [0, 1000, 10000]
HEAVY = ("dbus_fast", "dbus_fast.aio", "lxml.etree", "storaged.model.definitions",
         "storaged.engine", "storaged.bus.service", "storaged.daemon")


async def adopt(bus, vg, img):
    pool = await call(bus, MANAGER, MGR, "DefinePool", "s", [
        f"<pool type='lvm'><name>{vg}</name><physical_volume type='file'>"
        f"<file>{img}</file></physical_volume></pool>"])
    await call(bus, pool, POOL, "SetAutostart", "b", [True])
    await call(bus, pool, POOL, "Start")
    return pool


async def pairs(bus, pool, vg, n, tag):
    """Alternate bare lvcreate and AllocateVolume; remove each after timing it.
    Each AllocateVolume is timed once the daemon has followed the bare
    lvcreate before it (its InterfacesAdded has come), so that it times the
    call, not the call queued behind the parse of that outside change."""
    await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                           interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                           body=["type='signal',sender='org.storaged.Storaged1',"
                                 "member='InterfacesAdded'"]))
    seen = set()

    def on_signal(msg):
        if msg.message_type == MessageType.SIGNAL and msg.member == "InterfacesAdded":
            props = msg.body[1].get(VOL, {})
            if "Name" in props:
                seen.add(props["Name"].value)
        return False
    bus.add_message_handler(on_signal)
    bare, dbus = [], []
    try:
        for i in range(n):
            t = time.perf_counter()
            lvm("lvcreate", "--yes", "--name", f"bare{tag}{i}", "--size", f"{4 * MiB}b", vg)
            bare.append(time.perf_counter() - t)
            await wait_for(lambda: f"bare{tag}{i}" in seen, timeout=30)
            t = time.perf_counter()
            await call(bus, pool, POOL, "AllocateVolume", "sta{sv}", [f"bus{tag}{i}", 4 * MiB, {}])
            dbus.append(time.perf_counter() - t)
            lvm("lvremove", "--yes", "--force", f"{vg}/bare{tag}{i}")
            await call(bus, pool, POOL, "DeallocateVolume", "s", [f"bus{tag}{i}"])
    finally:
        bus.remove_message_handler(on_signal)
    return bare, dbus, statistics.median(dbus) / statistics.median(bare)


async def allocate_vs_lvcreate(base, address, n_pairs):
    print("\n== AllocateVolume (D-Bus) vs bare lvcreate, pair by pair (goal: ratio <= 1.10)")
    for size in SIZES:
        sub = os.path.join(base, f"alloc{size}")
        os.makedirs(sub)
        vg = f"alloc{size}x{os.getpid() % 1000}"
        _, img = make_vg_with_lvs(sub, vg, size, spare=n_pairs * 2 + 16)
        for backups in (True, False):
            set_backups(backups)
            run = os.path.join(sub, "on" if backups else "off")
            os.makedirs(run)
            d = Daemon(run, address, "--no-default-pool", "--log-level", "warning").start(timeout=600)
            try:
                bus = await MessageBus(bus_address=address).connect()
                pool = await adopt(bus, vg, img)
                for i in range(2):  # warm-up: page cache, first-call costs
                    await call(bus, pool, POOL, "AllocateVolume", "sta{sv}", [f"warm{i}", 4 * MiB, {}])
                    await call(bus, pool, POOL, "DeallocateVolume", "s", [f"warm{i}"])
                n = n_pairs if size < 10000 else max(3, n_pairs // 4)
                bare, dbus, ratio = await pairs(bus, pool, vg, n, "on" if backups else "off")
                label = f"{size:>5} LVs, backups {'on ' if backups else 'off'}"
                print(f"  {label:<22}  bare lvcreate  {median_p95(bare)}")
                print(f"  {'':<22}  AllocateVolume {median_p95(dbus)}   ratio {ratio:.2f}x")
                bus.disconnect()
            finally:
                d.stop()
        set_backups(True)


def bare_boot(img, vg):
    """The LVM work a boot cannot avoid, run bare: loop attach, vgscan, activation, one report."""
    t = time.perf_counter()
    dev = subprocess.run(["losetup", "--find", "--show", "--nooverlap", img], capture_output=True,
                         text=True, check=True).stdout.strip()
    lvm("vgscan")
    lvm("vgchange", "-ay", vg)
    lvm("fullreport", "--reportformat", "json", "--units", "b", "--nosuffix", vg)
    took = time.perf_counter() - t
    subprocess.run(["losetup", "--detach", dev], check=True)
    return took


def detach(base):
    for dev in loops_under(base):
        subprocess.run(["losetup", "--detach", dev], check=False)


async def startup(base, address, samples=3):
    print("\n== start-up to READY=1 vs the same LVM work run bare (goal: at most +100 ms)")
    for size in SIZES[1:]:
        sub = os.path.join(base, f"start{size}")
        os.makedirs(sub)
        vg = f"start{size}x{os.getpid() % 1000}"
        _, img = make_vg_with_lvs(sub, vg, size)
        d = Daemon(sub, address, "--no-default-pool", "--log-level", "warning").start()
        bus = await MessageBus(bus_address=address).connect()
        await adopt(bus, vg, img)
        bus.disconnect()
        d.stop()
        starts, bares, rss = [], [], 0
        try:
            for _ in range(samples):
                detach(sub)  # as after a reboot: the daemon attaches the loop again
                bares.append(bare_boot(img, vg))
                d = Daemon(sub, address, "--no-default-pool", "--log-level", "warning")
                t = time.perf_counter()
                d.start(timeout=600)
                starts.append(time.perf_counter() - t)
                rss = rss_kib(d.proc.pid) / 1024
                d.stop()
        finally:
            d.stop()
        s, b = statistics.median(starts), statistics.median(bares)
        print(f"  {size} LVs: READY=1 {median_p95(starts)}")
        print(f"  {'':<9} bare    {median_p95(bares)}   difference {(s - b) * 1000:+.0f} ms, "
              f"ratio {s / b:.2f}x; RSS after start-up {rss:.1f} MiB")


def imports():
    """python -X importtime of each heavy module, and the RSS it adds to a bare interpreter."""
    print("\n== imports: time (python -X importtime, all modules it pulls in) and RSS of each")
    py = sys.executable

    def one(code):
        out = subprocess.run([py, "-X", "importtime", "-c", code + "\n" + _RSS], capture_output=True,
                             text=True, cwd=os.path.dirname(HERE))
        us = sum(int(line.split("|")[1]) for line in out.stderr.splitlines()
                 if line.startswith("import time:") and line.split("|")[1].strip().isdigit()
                 and not line.split("|")[2].startswith("  "))
        return us / 1000, float(out.stdout.strip() or "nan")

    bare_ms, bare_rss = one("pass")
    print(f"  bare interpreter {'':<22} {bare_ms:7.1f} ms   RSS {bare_rss:5.1f} MiB")
    for mod in HEAVY:
        took, rss = one(f"import {mod}")
        print(f"  import {mod:<32} {took - bare_ms:7.1f} ms   RSS {rss:5.1f} MiB (+{rss - bare_rss:.1f})")


_RSS = ("import sys\nfor l in open('/proc/self/status'):\n"
        "    l.startswith('VmRSS') and print(int(l.split()[1]) / 1024)")


def sub_bench(script, *args):
    print(f"\n== bench/{script} {' '.join(args)}", flush=True)
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, script), *args])
    try:
        proc.wait()
    except KeyboardInterrupt:  # the child cleans up its loops, VGs and daemons first
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        raise


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="alloc,startup,imports,peers,detect,scale,load")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--sizes", default="0,1000,10000")
    ap.add_argument("--cycles", type=int, default=1000,
                    help="create/delete cycles for the peers' churn and for bench/load.py")
    args = ap.parse_args()
    only = args.only.split(",")
    SIZES[:] = [int(x) for x in args.sizes.split(",")]
    print(f"storaged benchmarks ({os.cpu_count()} cores; metadata-only LVM on loop devices; "
          f"figures are noisy on a shared machine: compare the ratios)", flush=True)
    t0 = time.perf_counter()
    if "imports" in only:
        imports()
    if {"alloc", "startup"} & set(only):
        base, test_bus = isolated_world()
        try:
            if "alloc" in only:
                await allocate_vs_lvcreate(base, test_bus.address, args.pairs)
            if "startup" in only:
                await startup(base, test_bus.address)
        finally:
            test_bus.stop()
            cleanup(base)
    sys.stdout.flush()
    if "peers" in only:
        sub_bench("peers.py", "--cycles", str(args.cycles))
    if "detect" in only:
        sub_bench("detect.py", "--idle-seconds", "30")
    if "scale" in only:
        sub_bench("scale.py")
    if "load" in only:
        sub_bench("load.py", "--seconds", "10", "--cycles", str(args.cycles))
    print(f"\nall benchmarks: {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
