"""LVM's JSON reports as plain records.

One `lvm fullreport` gives every VG with its PVs and LVs; the columns asked for
are only the ones the daemon exports, which keeps the report small at 10,000 LVs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

VG_COLUMNS = ("vg_name,vg_uuid,vg_size,vg_free,vg_extent_size,vg_seqno,"
              "vg_missing_pv_count,vg_partial")
PV_COLUMNS = "pv_name,pv_uuid,pv_size,pv_free,pv_used,pv_missing,dev_size"
LV_COLUMNS = ("lv_name,lv_uuid,lv_size,lv_path,lv_active,lv_role,lv_device_open,"
              # thin pools, thin volumes and snapshots (engine/thin.py)
              "lv_layout,origin_uuid,data_percent,metadata_percent,lv_tags")


@dataclass(frozen=True)
class VgRecord:
    """One VG of a report."""

    name: str
    uuid: str
    size: int
    free: int
    extent_size: int
    seqno: int
    missing_pv_count: int
    partial: bool


@dataclass(frozen=True)
class PvRecord:
    """One PV of a report."""

    name: str
    uuid: str
    size: int
    free: int
    missing: bool
    used: int = 0


@dataclass(frozen=True)
class LvRecord:
    """One LV of a report."""

    name: str
    uuid: str
    size: int
    path: str
    active: bool
    open: bool
    thin: bool = False
    snapshot: bool = False  # a copy-on-write (thick) snapshot
    origin_uuid: str = ""
    data_percent: float = 0.0


@dataclass(frozen=True)
class ThinPoolRecord:
    """A thin pool LV (LVM reports it as private, so it is no volume)."""

    name: str
    size: int
    data_percent: float
    metadata_percent: float
    tags: tuple[str, ...] = ()


@dataclass
class VgReport:
    """A VG with its PVs and LVs."""

    vg: VgRecord
    pvs: list[PvRecord] = field(default_factory=list)
    lvs: list[LvRecord] = field(default_factory=list)
    thin_pools: list[ThinPoolRecord] = field(default_factory=list)


def _int(value: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _percent(value) -> float:
    """LVM's '12.50' as 0.125; empty (an inactive LV) as 0."""
    try:
        return max(0.0, min(1.0, float(value) / 100))
    except (TypeError, ValueError):
        return 0.0


def parse_fullreport(text: str) -> dict[str, VgReport]:
    """VG name -> its report. Hidden (private) LVs are left out."""
    data = json.loads(text) if text.strip() else {"report": []}
    result: dict[str, VgReport] = {}
    for entry in data.get("report", []):
        vgs = entry.get("vg") or []
        if not vgs:
            continue
        v = vgs[0]
        vg = VgRecord(name=v["vg_name"], uuid=v["vg_uuid"], size=_int(v["vg_size"]),
                      free=_int(v["vg_free"]), extent_size=_int(v["vg_extent_size"]),
                      seqno=_int(v["vg_seqno"]),
                      missing_pv_count=_int(v["vg_missing_pv_count"]),
                      partial=v.get("vg_partial") == "partial")
        report = VgReport(vg=vg)
        for p in entry.get("pv") or []:
            report.pvs.append(PvRecord(name=p["pv_name"], uuid=p["pv_uuid"],
                                       size=_int(p["pv_size"]), free=_int(p["pv_free"]),
                                       missing=p.get("pv_missing") == "missing",
                                       used=_int(p.get("pv_used"))))
        for lv in entry.get("lv") or []:
            layout = lv.get("lv_layout", "").split(",")
            if "thin" in layout and "pool" in layout:
                report.thin_pools.append(ThinPoolRecord(
                    name=lv["lv_name"], size=_int(lv["lv_size"]),
                    data_percent=_percent(lv.get("data_percent")),
                    metadata_percent=_percent(lv.get("metadata_percent")),
                    tags=tuple(t for t in lv.get("lv_tags", "").split(",") if t)))
                continue
            role = lv.get("lv_role", "").split(",")
            # Hidden LVs ([lvmlock], sanlock's leases in a shared VG) are LVM's own.
            if "private" in role or lv["lv_name"].startswith("["):
                continue
            report.lvs.append(LvRecord(name=lv["lv_name"], uuid=lv["lv_uuid"],
                                       size=_int(lv["lv_size"]), path=lv["lv_path"],
                                       active=lv.get("lv_active") == "active",
                                       open=lv.get("lv_device_open") == "open",
                                       thin="thin" in layout, snapshot="thicksnapshot" in role,
                                       origin_uuid=lv.get("origin_uuid", ""),
                                       data_percent=_percent(lv.get("data_percent"))))
        result[vg.name] = report
    return result
