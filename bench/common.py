"""What the benchmarks share: a world of their own, VGs filled fast, and how figures are printed."""
import os
import re
import secrets
import signal
import statistics
import subprocess
import tempfile
import time

from tests.harness import MiB, TestBus
from tests.lvmenv import lvm, make_lvm_system_dir

BACKUPS_OFF = "backup {\n    backup = 0\n    archive = 0\n}\n"


def isolated_world(prefix: str = "storaged-bench-", policy: str | None = None) -> tuple[str, TestBus]:
    """A fresh folder, LVM confined to it (its own devices file), and a bus in it."""
    stop_on_signals()
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.environ["LVM_SYSTEM_DIR"] = make_lvm_system_dir(base)
    return base, TestBus(base, policy=policy)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` cleans up."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, raise_interrupt)


def set_backups(on: bool) -> None:
    """LVM's metadata backups on or off in this world's lvm.conf."""
    conf = os.path.join(os.environ["LVM_SYSTEM_DIR"], "lvm.conf")
    with open(conf) as f:
        text = f.read().replace(BACKUPS_OFF, "")
    with open(conf, "w") as f:
        f.write(text + ("" if on else BACKUPS_OFF))


def median_p95(samples) -> str:
    s = sorted(samples)
    p95 = s[max(0, int(len(s) * 0.95) - 1)]
    return f"median {statistics.median(s) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  (n={len(s)})"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def lvm_uuid() -> str:
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    raw = "".join(secrets.choice(chars) for _ in range(32))
    out, pos = [], 0
    for c in (6, 4, 4, 4, 4, 4, 6):
        out.append(raw[pos:pos + c])
        pos += c
    return "-".join(out)


def lv_text(name: str, extent: int) -> str:
    return f"""
\t\t{name} {{
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
\t\t\t\t\t"pv0", {extent}
\t\t\t\t]
\t\t\t}}
\t\t}}"""


def make_vg_with_lvs(base: str, vg: str, count: int, spare: int = 64, prefix: str = "lv",
                     img: str | None = None) -> tuple[str, str]:
    """A VG on a loop file with a large metadata area holding `count` 1-extent
    (4 MiB) LVs, written in one `vgcfgrestore` of generated metadata (one by
    one would take minutes at 10,000). Returns (loop device, image file)."""
    img = img or os.path.join(base, f"{vg}.img")
    with open(img, "wb") as f:
        f.truncate((count + spare) * 4 * MiB + 256 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    mda = "128m" if count > 2000 else "16m"
    lvm("pvcreate", "--yes", "--metadatasize", mda, dev)
    lvm("vgcreate", vg, dev)
    if count:
        backup = os.path.join(base, f"{vg}.vgcfg")
        lvm("vgcfgbackup", "-f", backup, vg)
        with open(backup) as f:
            text = f.read()
        section = ("\n\tlogical_volumes {\n" + "".join(lv_text(f"{prefix}{i}", i) for i in range(count))
                   + "\n\t}\n")
        idx = text.rindex("\n}")  # after physical_volumes, the last section of the VG
        text = text[:idx] + section + text[idx:]
        text = re.sub(r"seqno = (\d+)", lambda m: f"seqno = {int(m.group(1)) + 1}", text, count=1)
        with open(backup, "w") as f:
            f.write(text)
        lvm("vgcfgrestore", "-f", backup, vg)
        os.unlink(backup)
    return dev, img


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
