"""A sparse file on an NFS export, on a loop device.

The export is mounted under the daemon's run directory
(<run_dir>/nfs/<server>_<export>-<hash>), one mount per server and export,
shared by every file PV on it; it is unmounted when no loop device uses it.

Under systemd, mount and umount run in the host's mount namespace, as
transient services of PID 1's (system/host.py: in_host_namespace):
storaged.service has a mount namespace of its own (ProtectSystem= and the
like), and an export mounted in it would be invisible to the host and
outlive the service, out of systemd's reach at shutdown. Mounted by the host,
the export is a mount unit like any other network file system (systemd
unmounts it after the network pools' shutdown unit and before the network
goes) and shows in the service's namespace by propagation.
"""
from __future__ import annotations

import hashlib
import os
import re

from ..errors import AlreadyExists, Degraded, Failed, InvalidArgument, StoragedError
from ..model.definitions import NfsSource
from ..system import runner
from ..system.host import in_host_namespace
from ..system.files import create_sparse
from ..system.runner import CommandFailed
from . import loop
from .base import SourceBackend

MOUNT_TIMEOUT = 60.0
# hard, not soft: a loop device turns this file into a disk under a VG and the
# guests' file systems. A soft mount turns a server that is slow for a while
# into I/O errors, i.e. lost writes under a file system that believed them
# done. With hard, I/O waits for the server and resumes intact, as a disk
# stalled on its bus would. The hang that hard implies is kept away from the
# daemon: the mount command is run with retry=0 (one attempt, the engine
# retries later) under runner's timeout, and nothing the daemon polls touches
# the mounted file system (problem() and device() read only /proc and sysfs).
# timeo=100,retrans=3: "server not responding" is logged after ~30 s, not 3 min.
MOUNT_OPTIONS = "vers=4.2,hard,timeo=100,retrans=3,retry=0,nosuid,nodev,noexec"


def mount_point(run_dir: str, src: NfsSource) -> str:
    """A directory name made of safe characters only, unique per server+export."""
    readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{src.server}_{src.export}").strip("_")[:64]
    digest = hashlib.sha256(f"{src.server}:{src.export}".encode()).hexdigest()[:8]
    return os.path.join(run_dir, "nfs", f"{readable}-{digest}")


def mount_argv(src: NfsSource, where: str) -> list[str]:
    server = f"[{src.server}]" if ":" in src.server else src.server
    return ["mount", "-t", "nfs", "-o", MOUNT_OPTIONS, f"{server}:{src.export}", where]


def is_mounted(where: str) -> bool:
    """From /proc only: never a stat on a mount that may hang."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            return any(line.split()[4] == where for line in f)
    except OSError:
        return False


class NfsBackend(SourceBackend):
    """A sparse file on an NFS export mounted under the run directory."""

    attaches = True
    creates = True  # exists() stays None: only a mount could tell, and create() checks
    retried = True  # a server not reachable yet may be later (late network)

    def __init__(self, run_dir: str):
        # Resolved once: the kernel reports loop backing files by their real path.
        self.run_dir = os.path.realpath(run_dir)

    def _where(self, src: NfsSource) -> str:
        return mount_point(self.run_dir, src)

    def path(self, src: NfsSource) -> str:
        return os.path.join(self._where(src), src.file)

    def _export(self, src: NfsSource) -> str:
        return f"NFS export {src.server}:{src.export}"

    async def _mount(self, src: NfsSource) -> bool:
        """Mount the export unless it is; True if this call mounted it."""
        where = self._where(src)
        if is_mounted(where):
            return False
        os.makedirs(where, mode=0o700, exist_ok=True)
        try:
            await runner.run(in_host_namespace(mount_argv(src, where), f"mount {self._export(src)}",
                                               MOUNT_TIMEOUT - 5), timeout=MOUNT_TIMEOUT)
        except StoragedError as exc:
            try:
                os.rmdir(where)
            except OSError:
                pass
            said = runner._useful_lines(exc.stderr) if isinstance(exc, CommandFailed) else exc.message
            raise Failed(f"cannot mount {self._export(src)}: {said}") from None
        return True

    async def _unmount(self, src: NfsSource) -> None:
        where = self._where(src)
        if not is_mounted(where) or loop.bound_under(where):
            return  # another PV of this export still uses it
        try:
            await runner.run(in_host_namespace(["umount", where], f"unmount {self._export(src)}",
                                               MOUNT_TIMEOUT - 5), timeout=MOUNT_TIMEOUT)
        except CommandFailed as exc:
            raise Failed(f"cannot unmount {self._export(src)} from {where}: "
                         f"{runner._useful_lines(exc.stderr)}") from None
        try:
            os.rmdir(where)
        except OSError:
            pass

    async def create(self, src: NfsSource) -> tuple[str, bool]:
        if not src.size:
            raise InvalidArgument(f"physical_volume nfs file {src.file}: a size is needed to create it")
        mounted = await self._mount(src)
        path = self.path(src)
        try:
            if os.path.lexists(path):
                raise AlreadyExists(f"{src.file} already exists on {self._export(src)}; "
                                    f"remove it or choose another name")
            try:
                create_sparse(path, src.size)
            except FileExistsError:
                raise AlreadyExists(f"{src.file} already exists on {self._export(src)}") from None
            except OSError as exc:
                raise Failed(f"cannot create {src.file} on {self._export(src)}: {exc.strerror}") from None
            try:
                return await loop.attach(path, resolve=False), True
            except BaseException:
                os.unlink(path)
                raise
        except BaseException:
            if mounted:
                await self._unmount(src)
            raise

    async def up(self, src: NfsSource) -> str:
        try:
            await self._mount(src)
        except StoragedError as exc:
            raise Degraded(exc.message) from None
        path = self.path(src)
        if loop.bound_to(path, resolve=False):
            return loop.bound_to(path, resolve=False)[0]
        # The server has just answered the mount: looking at the file is safe.
        if not os.path.isfile(path):
            raise Degraded(f"physical volume file {src.file} is missing on {self._export(src)}")
        return await loop.attach(path, resolve=False)

    def device(self, src: NfsSource) -> str | None:
        found = loop.bound_to(self.path(src), resolve=False)
        return found[0] if found else None

    def problem(self, src: NfsSource) -> str | None:
        # No stat of the file: on a hard mount of a dead server it would hang
        # the daemon. A missing file shows as one no loop device is bound to.
        if not is_mounted(self._where(src)):
            return f"{self._export(src)} is not mounted"
        if not loop.bound_to(self.path(src), resolve=False):
            return (f"physical volume file {src.file} on {self._export(src)} is missing "
                    f"or not attached to a loop device")
        return None

    async def down(self, src: NfsSource) -> None:
        await loop.detach_file(self.path(src), resolve=False)
        await self._unmount(src)

    async def destroy(self, src: NfsSource) -> None:
        await self._mount(src)
        path = self.path(src)
        await loop.detach_file(path, resolve=False)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        await self._unmount(src)
