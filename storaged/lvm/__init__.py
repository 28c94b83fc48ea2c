"""LVM through its command line: JSON reports in, typed errors out."""
from .commands import Lvm
from .report import LvRecord, PvRecord, VgRecord, VgReport

__all__ = ["Lvm", "LvRecord", "PvRecord", "VgRecord", "VgReport"]
