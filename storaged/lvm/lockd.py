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


@dataclass(frozen=True)
class HostLease:
    """Another host's delta lease in a lockspace, as this host's sanlock sees it
    (`sanlock client host_status -D`; times in this host's monotonic seconds)."""

    host_id: int
    timestamp: int  # 0: the host has left the lockspace
    last_live: int
    io_timeout: int

    def seconds_left(self, now: float) -> float:
        """Until sanlock takes the host for dead and its locks are free: 8 x
        its I/O timeout + 60 s after its last renewal seen here."""
        return self.last_live + 8 * self.io_timeout + 60 - now


def parse_host_status(text: str) -> list[HostLease]:
    leases, head, fields = [], None, {}

    def close():
        if head and all(k in fields for k in ("last_live", "io_timeout")):
            leases.append(HostLease(head[0], head[1], fields["last_live"], fields["io_timeout"]))
    for line in text.splitlines():
        words = line.split()
        if len(words) == 3 and words[1] == "timestamp" and words[0].isdigit() and words[2].isdigit():
            close()
            head, fields = (int(words[0]), int(words[2])), {}
        elif head:
            for word in words:
                key, _, value = word.partition("=")
                if value.isdigit():
                    fields[key] = int(value)
    close()
    return leases
