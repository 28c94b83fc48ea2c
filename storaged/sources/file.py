"""A sparse file on a loop device."""
from __future__ import annotations

import errno
import logging
import os
import stat

from ..errors import AlreadyExists, Degraded, Failed, InvalidArgument
from ..model.definitions import FileSource
from . import loop
from .base import SourceBackend

log = logging.getLogger(__name__)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_parent(path: str, create: bool) -> int:
    """A descriptor of `path`'s directory, reached one component at a time
    without following a symlink anywhere (O_NOFOLLOW on every component), so
    a symlinked parent cannot redirect the file somewhere else. Missing
    directories are created (0700) when `create` is true."""
    parts = [p for p in os.path.dirname(path).split("/") if p]
    fd = os.open("/", _DIR_FLAGS)
    try:
        for i, part in enumerate(parts):
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InvalidArgument(
                        f"physical_volume file {path}: /{'/'.join(parts[:i + 1])} is a symlink "
                        f"or not a directory; symlinks are never followed") from None
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def check_no_symlinks(path: str) -> None:
    """Refuse a path with a symlink in any component (the file itself included)."""
    fd = _open_parent(path, create=False)
    try:
        st = os.stat(os.path.basename(path), dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(fd)
    if stat.S_ISLNK(st.st_mode):
        raise InvalidArgument(f"physical_volume file {path} is a symlink; symlinks are never followed")


def _create_sparse(path: str, size: int) -> None:
    dfd = _open_parent(path, create=True)
    name = os.path.basename(path)
    try:
        # O_EXCL|O_NOFOLLOW: never truncate or follow into an existing file.
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            os.unlink(name, dir_fd=dfd)
            raise
        os.close(fd)
        os.fsync(dfd)
    finally:
        os.close(dfd)


# Below this much free space a sparse file's next new block may not fit.
LOW_SPACE = 1024 * 1024


def _mount_point(path: str) -> str:
    """The mount point of the file system holding `path` (from /proc only)."""
    dev = os.stat(path).st_dev
    best = "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            major, minor = fields[2].split(":")
            if os.makedev(int(major), int(minor)) == dev and len(fields[4]) >= len(best):
                best = fields[4].replace("\\040", " ")
    return best


def space_problem(path: str) -> str | None:
    """What is wrong when the file system under a sparse PV file is full: the
    file cannot grow, so writes to its unallocated blocks fail."""
    try:
        st = os.statvfs(os.path.dirname(path))
        size = os.stat(path).st_size
        allocated = os.stat(path).st_blocks * 512
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free >= LOW_SPACE or allocated >= size:
        return None
    return (f"the file system holding physical volume file {path} ({_mount_point(path)}) is "
            f"full ({free} bytes free): writes to the pool fail where the sparse file has "
            f"no blocks yet")


def _regular_file(path: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"{path} exists and is not a regular file")
    return True


class FileBackend(SourceBackend):
    attaches = True

    async def create(self, src: FileSource, *, force: bool = False) -> tuple[str, bool]:
        try:
            check_no_symlinks(src.path)
        except FileNotFoundError:
            pass  # a missing directory is created below, one component at a time
        if _regular_file(src.path):
            # The caller decides whether an existing file is this pool's own PV.
            raise AlreadyExists(f"{src.path} already exists and is not a PV of this pool; "
                                f"remove it or choose another path")
        if not src.size:
            raise InvalidArgument(f"physical_volume file {src.path}: a size is needed to create it")
        try:
            fs = os.statvfs(os.path.dirname(src.path))
            free = fs.f_bavail * fs.f_frsize
        except OSError:
            free = None  # the directory is made below
        if free is not None and src.size > free:
            # Allowed (the file is sparse), but said: the pool can fill its file system.
            log.warning("physical volume file %s is %d bytes, more than the %d bytes free on "
                        "its file system (%s): writes to the pool will fail once that is full",
                        src.path, src.size, free, _mount_point(os.path.dirname(src.path)))
        try:
            _create_sparse(src.path, src.size)
        except FileExistsError:
            raise AlreadyExists(f"{src.path} already exists") from None
        except OSError as exc:
            raise Failed(f"cannot create {src.path}: {exc.strerror}") from None
        try:
            return await loop.attach(src.path), True
        except Exception:
            os.unlink(src.path)
            raise

    async def up(self, src: FileSource) -> str:
        try:
            check_no_symlinks(src.path)
        except FileNotFoundError:
            raise Degraded(f"the directory of physical volume file {src.path} is missing") from None
        if not _regular_file(src.path):
            raise Degraded(f"physical volume file {src.path} is missing")
        return await loop.attach(src.path)

    def device(self, src: FileSource) -> str | None:
        found = loop.bound_to(src.path)
        return found[0] if found else None

    def problem(self, src: FileSource) -> str | None:
        if not os.path.lexists(src.path):
            return f"physical volume file {src.path} is missing"
        if not loop.bound_to(src.path):
            return f"physical volume file {src.path} is not attached to a loop device"
        return space_problem(src.path)

    def space_problem(self, src: FileSource) -> str | None:
        return space_problem(src.path)

    async def down(self, src: FileSource) -> None:
        await loop.detach_file(src.path)

    async def destroy(self, src: FileSource) -> None:
        await loop.detach_file(src.path)
        try:
            os.unlink(src.path)
        except FileNotFoundError:
            pass
