"""A private LVM world for one test run: metadata-only LVM (the CI kernel has no
device-mapper) that sees only the devices this run's own PVs were created on.

LVM's devices file does the isolation: it starts empty, `pvcreate` adds each
new PV by its loop backing file, and a loop re-attached under another number is
still recognised. Nothing in the product knows about this; it inherits
LVM_SYSTEM_DIR from the environment like any LVM user.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

LVM_CONF = """\
global {
    activation = 0
}
devices {
    use_devicesfile = 1
    obtain_device_list_from_udev = 0
    scan_lvs = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
backup {
    backup = 1
    archive = 0
}
"""


def make_lvm_system_dir(base: str) -> str:
    conf = os.path.join(base, "lvm")
    os.makedirs(os.path.join(conf, "devices"), exist_ok=True)
    with open(os.path.join(conf, "lvm.conf"), "w") as f:
        f.write(LVM_CONF)
    open(os.path.join(conf, "devices", "system.devices"), "w").close()
    return conf


def loops_under(base: str) -> list[str]:
    base = os.path.realpath(base)
    found = []
    for d in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            with open(d) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(base + "/"):
            found.append("/dev/" + d.split("/")[3])
    return found


def cleanup(base: str) -> None:
    """Detach every loop device bound to a file under `base`, then remove it."""
    for dev in loops_under(base):
        subprocess.run(["losetup", "--detach", dev], check=False)
    shutil.rmtree(base, ignore_errors=True)
