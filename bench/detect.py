"""How fast storaged notices changes made outside it, and what that costs.

  detection latency of an outside lvcreate (exit of lvcreate -> InterfacesAdded
  received), median and p95, at 0 and 1,000 LVs, with LVM's backups on (inotify)
  and off (the fingerprint poll); LVM calls and time per refresh at 1,000 and
  10,000 LVs; the daemon's idle CPU over a minute.

The 1,000 and 10,000 LVs are written in one `vgcfgrestore` of generated
metadata (creating them one by one would take minutes), on a VG adopted by a
pool that names only its <volume_group>.

Usage: .venv/bin/python bench/detect.py [--idle-seconds 60] [--big 10000]
"""
import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dbus_fast import Message, MessageType  # noqa: E402

from storaged.client.transport import PatientMessageBus  # noqa: E402
from bench.common import isolated_world, median_p95  # noqa: E402
from tests.harness import MANAGER, Daemon, MGR, POOL, MiB  # noqa: E402
from tests.harness import bus_call as call  # noqa: E402
from tests.lvmenv import cleanup, lvm  # noqa: E402


def lvm_uuid():
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    raw = "".join(secrets.choice(chars) for _ in range(32))
    cuts = [6, 4, 4, 4, 4, 4, 6]
    out, pos = [], 0
    for c in cuts:
        out.append(raw[pos:pos + c])
        pos += c
    return "-".join(out)


def make_vg_with_lvs(base, vg, count):
    """A VG on a loop file with a large metadata area, holding `count` 1-extent LVs."""
    img = os.path.join(base, f"{vg}.img")
    with open(img, "wb") as f:
        f.truncate((count + 64) * 4 * MiB + 256 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    lvm("pvcreate", "--yes", "--metadatasize", "128m", dev)
    lvm("vgcreate", vg, dev)
    backup = os.path.join(base, f"{vg}.vgcfg")
    lvm("vgcfgbackup", "-f", backup, vg)
    with open(backup) as f:
        text = f.read()
    lvs = []
    for i in range(count):
        lvs.append(f"""
\t\tlv{i} {{
\t\t\tid = "{lvm_uuid()}"
\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]
\t\t\tflags = []
\t\t\tsegment_count = 1

\t\t\tsegment1 {{
\t\t\t\tstart_extent = 0
\t\t\t\textent_count = 1
\t\t\t\ttype = "striped"
\t\t\t\tstripe_count = 1
\t\t\t\tstripes = [
\t\t\t\t\t"pv0", {i}
\t\t\t\t]
\t\t\t}}
\t\t}}""")
    section = "\n\tlogical_volumes {\n" + "".join(lvs) + "\n\t}\n"
    # insert after the physical_volumes section (the last section before the VG's closing brace)
    idx = text.rindex("\n}")
    text = text[:idx] + section + text[idx:]
    text = re.sub(r"seqno = (\d+)", lambda m: f"seqno = {int(m.group(1)) + 1}", text, count=1)
    with open(backup, "w") as f:
        f.write(text)
    lvm("vgcfgrestore", "-f", backup, vg)
    return dev


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
        lvm("lvcreate", "--yes", "-n", name, "-L", "4m", vg)
        done = time.perf_counter()
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


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--idle-seconds", type=int, default=60)
    ap.add_argument("--big", type=int, default=10000)
    args = ap.parse_args()
    base, test_bus = isolated_world()
    try:
        print("detection latency of an outside lvcreate (lvcreate exits -> InterfacesAdded arrives)")
        for fill in (0, 1000):
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
