"""What every PV source can do, and which backend serves which source type."""
from __future__ import annotations

from ..errors import NotSupported
from ..model.definitions import DeviceSource, FileSource, IscsiSource, NfsSource, Source


class SourceBackend:
    """Brings one kind of PV source up and down. Every step is idempotent."""

    # Whether the engine retries up() while the source is out of reach: a
    # network source may just not be reachable yet; a local one won't come back
    # by waiting (and an admin who detached it meant it).
    retried = False
    # Whether up() makes something the kernel keeps until down() (a loop
    # device, an iSCSI session): then a started pool can be told from a stopped
    # one by looking, e.g. after the daemon restarts.
    attaches = False

    async def create(self, src: Source, *, force: bool = False) -> tuple[str, bool]:
        """Make the source exist for the first time; returns (device, created_something)."""
        raise NotImplementedError

    async def up(self, src: Source) -> str:
        """Bring an existing source up; returns its block device. Raises Degraded if it can't."""
        raise NotImplementedError

    def device(self, src: Source) -> str | None:
        """The block device if the source is up now, else None (no command run)."""
        raise NotImplementedError

    async def down(self, src: Source) -> None:
        raise NotImplementedError

    def problem(self, src: Source) -> str | None:
        """What is wrong with a source that should be up, found without running
        any command (it is polled); None when all is well."""
        return None

    def space_problem(self, src: Source) -> str | None:
        """Why writes to the source fail for lack of space under it (a sparse
        file on a full file system); None when there is room."""
        return None

    async def destroy(self, src: Source) -> None:
        """Remove what create() made (a file); the PV label is already gone."""


def backend_for(src: Source, run_dir: str) -> SourceBackend:
    """The backend for `src`; run_dir is the daemon's run directory (NFS mounts live there)."""
    from .device import DeviceBackend
    from .file import FileBackend
    from .iscsi import IscsiBackend
    from .nfs import NfsBackend
    if isinstance(src, FileSource):
        return FileBackend()
    if isinstance(src, DeviceSource):
        return DeviceBackend()
    if isinstance(src, IscsiSource):
        return IscsiBackend()
    if isinstance(src, NfsSource):
        return NfsBackend(run_dir)
    raise NotSupported(f"unknown physical volume type {type(src).__name__}")
