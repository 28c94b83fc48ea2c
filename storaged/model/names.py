"""Names by LVM's own rules, so that a name we accept is one LVM accepts."""
from __future__ import annotations

import re

from ..errors import InvalidArgument

_NAME_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*")
MAX_NAME = 127

# lvm2 lib/misc/lvm-string.c: names LVM keeps for its own hidden volumes.
_RESERVED_PREFIXES = ("snapshot", "pvmove")
_RESERVED_PARTS = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig",
                   "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta",
                   "_vdata", "_vorigin", "_wcorig")


def _check_common(name: str, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"{what}: must not be empty")
    if len(name) > MAX_NAME:
        raise InvalidArgument(f"{what}: {name[:20]!r}... is longer than {MAX_NAME} characters")
    if name in (".", ".."):
        raise InvalidArgument(f"{what}: {name!r} is not allowed")
    if name.startswith("-"):
        raise InvalidArgument(f"{what}: {name!r} must not start with '-'")
    if not _NAME_RE.fullmatch(name):
        raise InvalidArgument(f"{what}: {name!r} may only contain letters, digits and '+_.-'")
    return name


def check_vg_name(name: str, what: str = "volume group name") -> str:
    _check_common(name, what)
    if name in ("lvm", "mapper") or name.startswith("snapshot"):
        raise InvalidArgument(f"{what}: {name!r} is reserved by LVM")
    return name


def check_pool_name(name: str, what: str = "pool name") -> str:
    # A pool name is also a file name in the config dir and the default VG name.
    return check_vg_name(name, what)


def check_lv_name(name: str, what: str = "volume name") -> str:
    _check_common(name, what)
    if name.startswith(_RESERVED_PREFIXES):
        raise InvalidArgument(f"{what}: {name!r} starts with a prefix reserved by LVM")
    for part in _RESERVED_PARTS:
        if part in name:
            raise InvalidArgument(f"{what}: {name!r} contains {part!r}, reserved by LVM")
    return name
