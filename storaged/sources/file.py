"""A sparse file on a loop device."""
from __future__ import annotations

import logging
import os

from ..errors import AlreadyExists, Degraded, Failed, InvalidArgument
from ..model.definitions import FileSource
from ..system.files import (check_no_symlinks, create_sparse, mount_point, regular_file,
                            space_problem)
from . import loop
from .base import SourceBackend

log = logging.getLogger(__name__)

class FileBackend(SourceBackend):
    """A sparse file, made without following symlinks, on a loop device."""

    attaches = True
    creates = True

    async def create(self, src: FileSource) -> tuple[str, bool]:
        try:
            check_no_symlinks(src.path)
        except FileNotFoundError:
            pass  # a missing directory is created below, one component at a time
        if regular_file(src.path):
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
                        src.path, src.size, free, mount_point(os.path.dirname(src.path)))
        try:
            create_sparse(src.path, src.size)
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
        if not regular_file(src.path):
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

    def exists(self, src: FileSource) -> bool:
        return os.path.lexists(src.path)

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
