"""What the benchmarks share: a world of their own, and how figures are printed."""
import os
import statistics
import tempfile

from tests.harness import TestBus
from tests.lvmenv import make_lvm_system_dir


def isolated_world(prefix: str = "storaged-bench-") -> tuple[str, TestBus]:
    """A fresh folder, LVM confined to it (its own devices file), and a bus in it."""
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.environ["LVM_SYSTEM_DIR"] = make_lvm_system_dir(base)
    return base, TestBus(base)


def median_p95(samples) -> str:
    s = sorted(samples)
    p95 = s[max(0, int(len(s) * 0.95) - 1)]
    return f"median {statistics.median(s) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  (n={len(s)})"
