"""A sparse file on a loop device."""
from __future__ import annotations

import errno
import os
import stat

from ..errors import AlreadyExists, Degraded, Failed, InvalidArgument
from ..model.definitions import FileSource
from . import loop
from .base import SourceBackend


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


def _regular_file(path: str) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"{path} exists and is not a regular file")
    return True


class FileBackend(SourceBackend):
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
        return None

    async def down(self, src: FileSource) -> None:
        await loop.detach_file(src.path)

    async def destroy(self, src: FileSource) -> None:
        await loop.detach_file(src.path)
        try:
            os.unlink(src.path)
        except FileNotFoundError:
            pass
