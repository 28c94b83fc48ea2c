"""Pool definitions and the daemon's own small records, on disk.

Every write is atomic (temporary file, fsync, rename, fsync of the directory)
so a crash never leaves a half-written definition.
"""
from __future__ import annotations

import errno
import json
import logging
import os

from ..errors import Failed, NoSpace
from ..model.definitions import PoolDef, parse_pool, pool_to_xml

log = logging.getLogger(__name__)


def atomic_write(path: str, data: str, mode: int = 0o600) -> None:
    """Write `path` whole or not at all; a full or read-only file system is a
    named error that leaves the old file as it was and no temporary file."""
    directory = os.path.dirname(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        try:
            data_bytes = data.encode()
            if os.write(fd, data_bytes) != len(data_bytes):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(f"cannot write {path}: {exc.strerror}; nothing was changed") from None
        raise Failed(f"cannot write {path}: {exc.strerror}; nothing was changed") from None
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Store:
    """Pool definitions (XML), autostart markers and records, on disk."""

    def __init__(self, config_dir: str, state_dir: str):
        self.pools_dir = os.path.join(config_dir, "pools")
        self.autostart_dir = os.path.join(self.pools_dir, "autostart")
        self.records_dir = os.path.join(state_dir, "pools")

    def _def_path(self, name: str) -> str:
        return os.path.join(self.pools_dir, f"{name}.xml")

    def load(self) -> list[tuple[PoolDef, bool]]:
        result = []
        try:
            names = sorted(os.listdir(self.pools_dir))
        except FileNotFoundError:
            return result
        for fname in names:
            if not fname.endswith(".xml"):
                continue
            path = os.path.join(self.pools_dir, fname)
            try:
                with open(path, encoding="utf-8") as f:
                    pool = parse_pool(f.read())
            except Exception as exc:  # one bad file must not keep the others down
                log.error("ignoring pool definition %s: %s", path, exc)
                continue
            if f"{pool.name}.xml" != fname:
                log.error("ignoring pool definition %s: it names pool %r", path, pool.name)
                continue
            result.append((pool, os.path.exists(os.path.join(self.autostart_dir, pool.name))))
        return result

    def save(self, pool: PoolDef) -> None:
        atomic_write(self._def_path(pool.name), pool_to_xml(pool), 0o644)

    def remove(self, name: str) -> None:
        _remove(self._def_path(name))
        _remove(os.path.join(self.autostart_dir, name))

    def set_autostart(self, name: str, on: bool) -> None:
        marker = os.path.join(self.autostart_dir, name)
        if on:
            atomic_write(marker, "", 0o644)
        else:
            _remove(marker)

    # Records of what a pool created (files), so that Delete removes only those.
    def _record_path(self, uuid: str) -> str:
        return os.path.join(self.records_dir, f"{uuid}.json")

    def record(self, uuid: str) -> dict:
        try:
            with open(self._record_path(uuid), encoding="utf-8") as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {"created_files": []}

    def save_record(self, uuid: str, record: dict) -> None:
        atomic_write(self._record_path(uuid), json.dumps(record, indent=1, sort_keys=True))

    def records(self) -> list[tuple[str, dict]]:
        try:
            names = sorted(os.listdir(self.records_dir))
        except FileNotFoundError:
            return []
        return [(n[:-5], self.record(n[:-5])) for n in names if n.endswith(".json")]

    def remove_record(self, uuid: str) -> None:
        _remove(self._record_path(uuid))
