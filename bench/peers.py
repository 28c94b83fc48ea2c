"""storaged and Debian's lvmdbusd side by side on the same VG, in one run: figures and ratios.

  At 0, 1,000 and 10,000 LVs (one VG, 4 MiB LVs, the same sizes for both):
  create, delete, GetManagedObjects, start-up to first reply, RSS idle and
  after create/delete churn. The two daemons run one after the other (never at
  once: LVM's notify_dbus would make each refresh on the other's changes), on
  one private bus (DBUS_SYSTEM_BUS_ADDRESS) and one LVM_SYSTEM_DIR.
  Then libvirt's storage driver at the same sizes and with the same figures
  (bench/peer_libvirt.py): a session libvirtd run as `nobody` in a folder of its
  own, with a `dir` pool of 4 MiB raw files (its logical backend needs
  device-mapper, which this kernel lacks), driven by one long-lived virsh.

Usage: .venv/bin/python bench/peers.py [--sizes 0,1000,10000] [--pairs 10] [--cycles 1000]
"""
import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbus_fast import Message, MessageType  # noqa: E402
from dbus_fast.aio import MessageBus  # noqa: E402

from bench.common import isolated_world, make_vg_with_lvs  # noqa: E402
from bench.peer_libvirt import Libvirtd, ensure_libvirtd, label as libvirt_label  # noqa: E402
from tests.harness import MANAGER, ROOT, Daemon, MGR, POOL, MiB  # noqa: E402
from tests.harness import bus_call as call, rss_kib, terminate  # noqa: E402
from tests.lvmenv import cleanup  # noqa: E402
from storaged.embedded import policy_file  # noqa: E402

LVMDBUS = "com.redhat.lvmdbus1"
LVMDBUS_ROOT = "/com/redhat/lvmdbus1"
LVMDBUS_POLICY = "/etc/dbus-1/system.d/com.redhat.lvmdbus1.conf"
OM = "org.freedesktop.DBus.ObjectManager"


def ensure_lvmdbusd() -> str | None:
    """Debian's lvm2-dbusd, installed when missing; its path, or None."""
    if not shutil.which("lvmdbusd") and not os.path.exists("/sbin/lvmdbusd"):
        print("installing Debian's lvm2-dbusd")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "lvm2-dbusd"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)
    return shutil.which("lvmdbusd") or ("/sbin/lvmdbusd" if os.path.exists("/sbin/lvmdbusd") else None)


def write_policy(base: str) -> str:
    """One bus policy file that includes storaged's and lvmdbusd's."""
    path = os.path.join(base, "peers-policy.conf")
    with open(path, "w") as f:
        f.write('<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
                ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n<busconfig>\n'
                f"  <include>{policy_file()}</include>\n  <include>{LVMDBUS_POLICY}</include>\n"
                "</busconfig>\n")
    return path


async def raw_call(bus, dest, path, iface, member, sig="", body=()):
    reply = await bus.call(Message(destination=dest, path=path, interface=iface, member=member,
                                   signature=sig, body=list(body)))
    if reply.message_type == MessageType.ERROR:
        raise RuntimeError(f"{member}: {reply.error_name}: {reply.body}")
    return reply.body


async def first_reply(bus, dest, path, proc, timeout=600.0):
    """Poll GetManagedObjects until it answers; its reply."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{dest} exited with {proc.returncode}")
        reply = await bus.call(Message(destination=dest, path=path, interface=OM,
                                       member="GetManagedObjects"))
        if reply.message_type != MessageType.ERROR:
            return reply.body[0]
        await asyncio.sleep(0.005)
    raise RuntimeError(f"{dest} gave no reply within {timeout} s")


async def gmo_times(bus, dest, path, n=5):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await raw_call(bus, dest, path, OM, "GetManagedObjects")
        out.append(time.perf_counter() - t)
    return statistics.median(out)


class Storaged:
    name = "storaged"

    def __init__(self, base, address, vg, img):
        self.base, self.address, self.vg, self.img = base, address, vg, img
        self.d = None

    async def define(self, bus):
        d = Daemon(self.base, self.address, "--no-default-pool", "--log-level", "warning").start()
        pool = await call(bus, MANAGER, MGR, "DefinePool", "s", [
            f"<pool type='lvm'><name>{self.vg}</name><physical_volume type='file'>"
            f"<file>{self.img}</file></physical_volume></pool>"])
        await call(bus, pool, POOL, "SetAutostart", "b", [True])
        d.stop()
        self.pool = pool

    async def start(self, bus):
        self.d = Daemon(self.base, self.address, "--no-default-pool", "--log-level", "warning")
        t = time.perf_counter()
        self.d.start(timeout=600)
        objs = await first_reply(bus, "org.storaged.Storaged1", ROOT, self.d.proc)
        return time.perf_counter() - t, len(objs)

    def pid(self):
        return self.d.proc.pid

    async def gmo(self, bus):
        return await gmo_times(bus, "org.storaged.Storaged1", ROOT)

    async def create(self, bus, name):
        await call(bus, self.pool, POOL, "AllocateVolume", "sta{sv}", [name, 4 * MiB, {}])

    async def delete(self, bus, name):
        await call(bus, self.pool, POOL, "DeallocateVolume", "s", [name])

    def stop(self):
        if self.d:
            self.d.stop()


class LvmDbusd:
    name = "lvmdbusd"

    def __init__(self, base, address, vg, exe):
        self.base, self.address, self.vg, self.exe = base, address, vg, exe
        self.proc = None
        self.lvs = {}

    async def start(self, bus):
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        log = open(os.path.join(self.base, "lvmdbusd.log"), "a")
        t = time.perf_counter()
        self.proc = subprocess.Popen([self.exe], env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        objs = await first_reply(bus, LVMDBUS, LVMDBUS_ROOT, self.proc)
        took = time.perf_counter() - t
        self.vg_path = (await raw_call(bus, LVMDBUS, LVMDBUS_ROOT + "/Manager", LVMDBUS + ".Manager",
                                       "LookUpByLvmId", "s", [self.vg]))[0]
        return took, len(objs)

    def pid(self):
        return self.proc.pid

    async def gmo(self, bus):
        return await gmo_times(bus, LVMDBUS, LVMDBUS_ROOT)

    async def create(self, bus, name):
        (lv, _job), = await raw_call(bus, LVMDBUS, self.vg_path, LVMDBUS + ".Vg", "LvCreateLinear",
                                     "stbia{sv}", [name, 4 * MiB, False, -1, {}])
        self.lvs[name] = lv

    async def delete(self, bus, name):
        await raw_call(bus, LVMDBUS, self.lvs.pop(name), LVMDBUS + ".Lv", "Remove", "ia{sv}", [-1, {}])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            terminate(self.proc, 30)


async def measure(peer, bus, pairs, cycles):
    start, n_objs = await peer.start(bus)
    try:
        r = {"start": start, "objects": n_objs, "rss_idle": rss_kib(peer.pid()) / 1024}
        r["gmo"] = await peer.gmo(bus)
        creates, deletes = [], []
        for i in range(pairs):
            t = time.perf_counter()
            await peer.create(bus, f"p{i}")
            creates.append(time.perf_counter() - t)
            t = time.perf_counter()
            await peer.delete(bus, f"p{i}")
            deletes.append(time.perf_counter() - t)
        r["create"], r["delete"] = statistics.median(creates), statistics.median(deletes)
        t = time.perf_counter()
        for i in range(cycles):
            await peer.create(bus, f"c{i}")
            await peer.delete(bus, f"c{i}")
        r["cycles"], r["churn_s"] = cycles, time.perf_counter() - t
        r["rss_churn"] = rss_kib(peer.pid()) / 1024
        return r
    finally:
        peer.stop()


def report(size, s, p, v=None):
    """storaged beside lvmdbusd and, when it ran, libvirtd (`v`), with the ratios."""
    print(f"\n{size} LVs in the VG ({s['objects']} storaged objects, {p['objects']} lvmdbusd objects"
          + (f"; libvirtd: {size} files in its dir pool, {v['objects']} volumes listed)" if v else ")"))
    head = f"  {'':34} {'storaged':>10} {'lvmdbusd':>10} {'storaged/lvmdbusd':>18}"
    print(head + (f" {'libvirtd':>10} {'storaged/libvirtd':>18}" if v else ""))
    rows = [("create (ms)", "create", 1000), ("delete (ms)", "delete", 1000),
            ("GetManagedObjects (ms)", "gmo", 1000), ("start-up to first reply (ms)", "start", 1000),
            ("RSS idle (MiB)", "rss_idle", 1),
            (f"RSS after {s['cycles'] or 'the'} create/delete (MiB)", "rss_churn", 1)]
    for label, key, k in rows:
        line = f"  {label:<34} {s[key] * k:10.1f} {p[key] * k:10.1f} {s[key] / p[key]:17.2f}x"
        print(line + (f" {v[key] * k:10.1f} {s[key] / v[key]:17.2f}x" if v else ""))
    if s["cycles"]:
        print(f"  churn: storaged {s['cycles'] / s['churn_s']:.1f} cycles/s, "
              f"lvmdbusd {p['cycles'] / p['churn_s']:.1f} cycles/s"
              + (f", libvirtd {v['cycles'] / v['churn_s']:.1f} cycles/s" if v else ""))
    if v and size == 1000:
        met = "met" if s["rss_idle"] <= v["rss_idle"] else "NOT met"
        print(f"  goal, RSS with 1,000 volumes at most libvirtd's: {met} "
              f"({s['rss_idle']:.1f} vs {v['rss_idle']:.1f} MiB idle)")


async def measure_libvirtd(size, pairs, cycles):
    """libvirtd's figures at `size` volumes; None, with the reason printed, when it cannot run."""
    peer = Libvirtd(size)
    try:
        peer.define()
        return await measure(peer, None, pairs, cycles)
    except Exception as e:  # noqa: BLE001 -- its failure skips it, not the other peers' figures
        print(f"  libvirtd at {size} volumes: skipped: {type(e).__name__}: {e}")
        return None
    finally:
        peer.cleanup()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0,1000,10000")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=1000, help="churn cycles, at the first size only")
    args = ap.parse_args()
    print("peers, side by side on one VG (one after the other, same bus, same LVM world)")
    exe = ensure_lvmdbusd()
    if not exe:
        print("  lvmdbusd: not installed and could not be installed: skipped")
        return
    libvirt_skip = ensure_libvirtd()
    print(f"  libvirtd: {libvirt_label()}; the D-Bus figures' equivalents are virsh commands in one "
          "virsh (vol-create-as, vol-delete; for GetManagedObjects vol-list: listAllVolumes and "
          "one GetPath a volume)" if not libvirt_skip else f"  libvirtd: skipped: {libvirt_skip}")
    base, test_bus = None, None
    try:
        base, test_bus = isolated_world(policy=None)
        test_bus.stop()
        from tests.harness import TestBus
        test_bus = TestBus(base, policy=write_policy(base))
        bus = await MessageBus(bus_address=test_bus.address).connect()
        for n, size in enumerate(int(x) for x in args.sizes.split(",")):
            sub = os.path.join(base, f"size{size}")
            os.makedirs(sub)
            vg = f"peer{size}x{os.getpid() % 1000}"
            make_vg_with_lvs(sub, vg, size, spare=args.pairs + 16)
            st = Storaged(sub, test_bus.address, vg, os.path.join(sub, f"{vg}.img"))
            await st.define(bus)
            cycles = args.cycles if n == 0 else 0
            s = await measure(st, bus, args.pairs, cycles)
            p = await measure(LvmDbusd(sub, test_bus.address, vg, exe), bus, args.pairs, cycles)
            v = None if libvirt_skip else await measure_libvirtd(size, args.pairs, cycles)
            report(size, s, p, v)
        bus.disconnect()
    finally:
        if test_bus:
            test_bus.stop()
        if base:
            cleanup(base)


if __name__ == "__main__":
    asyncio.run(main())
