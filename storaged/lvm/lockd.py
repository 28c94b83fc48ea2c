"""What lvmlockd says it holds on this host (`lvmlockctl --info`), and how LVM
words a lock that another host holds.

`lvs -o lv_active_exclusively` says "active exclusively" even for an LV
activated shared (-asy), so the lock mode comes from lvmlockd itself:

    VG shared1 lock_type=sanlock r2x1Xe-...
    LS sanlock lvm_shared1
    LK VG un ver 7
    LK LV ex Jm7Lz3-...
    LK LV sh 0fW2aQ-...
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

# A Volume's Lock property, from lvmlockd's mode.
LOCK_MODES = {"ex": "exclusive", "sh": "shared"}

# LVM's words when another host holds what a command needs (lib/locking/lvmlockd.c).
LV_HELD_ELSEWHERE = re.compile(r"LV locked by other host", re.I)
# The VG's or the global lock, briefly held by another host's command: retried.
VG_HELD_ELSEWHERE = re.compile(r"(VG \S+|Global) lock failed: held by other host", re.I)


@dataclass
class Lockspace:
    """One VG's lockspace, started on this host, and the LV locks held in it."""

    vg_name: str
    lock_type: str
    lv_locks: dict[str, str] = field(default_factory=dict)  # LV UUID (no dashes) -> ex/sh


def lv_key(uuid: str) -> str:
    """lvmlockd and LVM's reports may spell an LV UUID with or without dashes."""
    return uuid.replace("-", "")


def parse_info(text: str) -> dict[str, Lockspace]:
    """VG name -> its lockspace, from `lvmlockctl --info`."""
    spaces: dict[str, Lockspace] = {}
    current: Lockspace | None = None
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "VG" and words[2].startswith("lock_type="):
            current = spaces[words[1]] = Lockspace(words[1], words[2].split("=", 1)[1])
        elif current and len(words) >= 4 and words[:2] == ["LK", "LV"] and words[2] in LOCK_MODES:
            current.lv_locks[lv_key(words[3])] = words[2]
    return spaces
