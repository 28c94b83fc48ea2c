"""A private LVM world for one test run: metadata-only LVM (the CI kernel has no
device-mapper) that sees only the devices this run's own PVs were created on.

LVM's devices file does the isolation: it starts empty, `pvcreate` adds each
new PV by its loop backing file, and a loop re-attached under another number is
still recognised. The product inherits LVM_SYSTEM_DIR like any LVM user.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

from storaged.embedded import write_lvm_config


def make_lvm_system_dir(base: str) -> str:
    # write_lvm_config gives the world its own lock directory too: another
    # run's LVM on this machine (or a test holding a lock on purpose) does not
    # make this one wait.
    return write_lvm_config(os.path.join(base, "lvm"), activation=False)


def loops_under(base: str) -> list[str]:
    base = os.path.realpath(base)
    found = []
    for d in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(d) as f:
                backing = f.read().strip().removesuffix(" (deleted)")
        except OSError:
            continue
        if backing.startswith(base + "/"):
            found.append("/dev/" + d.split("/")[3])
    return found


def lvm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["lvm", *args], capture_output=True, text=True, check=check,
                          env={**os.environ, "LVM_SUPPRESS_FD_WARNINGS": "1", "LC_ALL": "C"})


def lvm_state() -> str:
    """Everything LVM knows, for before/after comparisons."""
    return lvm("fullreport", "--reportformat", "json", "--units", "b", "--nosuffix",
               "--configreport", "vg", "-o", "vg_name,vg_uuid,vg_seqno,vg_free,pv_count,lv_count",
               "--configreport", "lv", "-o", "lv_name,lv_uuid,lv_size",
               "--configreport", "pv", "-o", "pv_name,pv_uuid").stdout


def cleanup(base: str) -> None:
    """Detach every loop device bound to a file under `base`, then remove it."""
    for dev in loops_under(base):
        subprocess.run(["losetup", "--detach", dev], check=False)
    shutil.rmtree(base, ignore_errors=True)
