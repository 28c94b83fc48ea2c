"""Files the daemon makes and looks at: sparse PV files created without ever
following a symlink, and the space left under them."""
from __future__ import annotations

import errno
import os
import stat

from ..errors import InvalidArgument


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_parent(path: str, create: bool) -> int:
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
    fd = open_parent(path, create=False)
    try:
        st = os.stat(os.path.basename(path), dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(fd)
    if stat.S_ISLNK(st.st_mode):
        raise InvalidArgument(f"physical_volume file {path} is a symlink; symlinks are never followed")


def create_sparse(path: str, size: int) -> None:
    dfd = open_parent(path, create=True)
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


def mount_point(path: str) -> str:
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
    return (f"the file system holding physical volume file {path} ({mount_point(path)}) is "
            f"full ({free} bytes free): writes to the pool fail where the sparse file has "
            f"no blocks yet")


def regular_file(path: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"{path} exists and is not a regular file")
    return True
