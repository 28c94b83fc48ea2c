"""Physical volume sources: what must be brought up before LVM can see a PV,
one backend per type (file, device, iscsi, nfs), chosen here."""
from __future__ import annotations

from ..errors import NotSupported
from ..model.definitions import DeviceSource, FileSource, IscsiSource, NfsSource, Source
from .base import SourceBackend
from .device import DeviceBackend
from .file import FileBackend
from .iscsi import IscsiBackend
from .nfs import NfsBackend

__all__ = ["SourceBackend", "backend_for"]


def backend_for(src: Source, run_dir: str) -> SourceBackend:
    """The backend for `src`; run_dir is the daemon's run directory (NFS mounts live there)."""
    if isinstance(src, FileSource):
        return FileBackend()
    if isinstance(src, DeviceSource):
        return DeviceBackend()
    if isinstance(src, IscsiSource):
        return IscsiBackend()
    if isinstance(src, NfsSource):
        return NfsBackend(run_dir)
    raise NotSupported(f"unknown physical volume type {type(src).__name__}")
