"""What every PV source backend can do (the engine asks nothing else of them)."""
from __future__ import annotations

from ..model.definitions import Source


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
    # Whether create() makes something (a file) that destroy() removes; the
    # engine records it, so that Delete removes only what the pool made.
    creates = False

    async def create(self, src: Source) -> tuple[str, bool]:
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

    def exists(self, src: Source) -> bool | None:
        """Whether what create() would make is already there, found without
        bringing anything up; None where that cannot be known so cheaply."""
        return None

    def space_problem(self, src: Source) -> str | None:
        """Why writes to the source fail for lack of space under it (a sparse
        file on a full file system); None when there is room."""
        return None

    async def destroy(self, src: Source) -> None:
        """Remove what create() made (a file); the PV label is already gone."""
