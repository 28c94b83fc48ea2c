"""A sparse file on a loop device."""
from __future__ import annotations

import os
import stat

from ..errors import AlreadyExists, Degraded, Failed, InvalidArgument
from ..model.definitions import FileSource
from . import loop
from .base import SourceBackend


def _create_sparse(path: str, size: int) -> None:
    parent = os.path.dirname(path)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    # O_EXCL|O_NOFOLLOW: never truncate or follow into an existing file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    dfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
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
