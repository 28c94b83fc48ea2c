"""A fast look at a VG's metadata text: LVM's own backup of it, or the copy
in a PV's metadata area (lvm/label.py), which is the same text, unindented.

LVM writes `<backup_dir>/<vg>` after every change it commits, and the text is
on the PV the moment the command returns. Reading it costs far less than
another LVM command (which rescans every device), so after an lvcreate the
daemon learns the new LV's UUID from it. Where neither shows the change,
callers fall back to a report.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass

# Indentation-agnostic: backups indent with tabs, the on-disk copy does not.
_SEQNO_RE = re.compile(r"^\s*seqno = (\d+)\s*$", re.M)


@dataclass(frozen=True)
class NewLv:
    """An LV found in LVM's metadata backup, with the VG's sequence number."""

    uuid: str
    seqno: int


def read_backup(backup_dir: str, vg_name: str) -> str | None:
    try:
        with open(os.path.join(backup_dir, vg_name), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def find_lv(text: str, lv_name: str) -> NewLv | None:
    """The UUID of `lv_name` and the VG seqno in a metadata backup text."""
    seq = _SEQNO_RE.search(text)
    # Only among the LVs: a PV's section ("pv0 {") could carry the same name.
    start = text.find("logical_volumes {")
    m = re.compile(r"^\s*" + re.escape(lv_name) + r" \{\s*id = \"([^\"]+)\"",
                   re.M).search(text, start) if start >= 0 else None
    if not (seq and m):
        return None
    return NewLv(uuid=m.group(1), seqno=int(seq.group(1)))


def seqno(text: str) -> int | None:
    m = _SEQNO_RE.search(text)
    return int(m.group(1)) if m else None
