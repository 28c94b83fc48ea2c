"""Names by LVM's own rules, so that a name we accept is one LVM accepts."""
from __future__ import annotations

import re

from ..errors import InvalidArgument

_NAME_RE = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*")
MAX_NAME = 127
# LVM refuses an LV whose VG and LV names together are longer than this
# (measured with lvm2 2.03.16: "LV name ... length N is not supported").
MAX_VG_AND_LV = 124
# Device-mapper names are "VG-LV" with every '-' inside a name doubled, and
# at most 127 bytes (DM_NAME_LEN less its NUL): activation refuses longer ones.
MAX_DM_NAME = 127
# A pool's VG must leave room for a volume name.
MAX_VG_NAME = MAX_VG_AND_LV - 1

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
    if len(name) > MAX_VG_NAME:
        raise InvalidArgument(f"{what}: {name[:20]!r}... is {len(name)} characters; at most "
                              f"{MAX_VG_NAME}, since LVM limits a volume group's and a volume's "
                              f"names together to {MAX_VG_AND_LV}")
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


def dm_name(vg: str, lv: str) -> str:
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def check_lv_in_vg(name: str, vg: str, what: str = "volume name") -> str:
    """A volume name that LVM and device-mapper accept inside volume group `vg`."""
    check_lv_name(name, what)
    room = MAX_VG_AND_LV - len(vg)
    if len(name) > room:
        raise InvalidArgument(f"{what}: {name[:20]!r}... is {len(name)} characters; in volume "
                              f"group {vg!r} ({len(vg)} characters) a volume name may have at "
                              f"most {room}: LVM limits the two names together to {MAX_VG_AND_LV}")
    if len(dm_name(vg, name)) > MAX_DM_NAME:
        raise InvalidArgument(f"{what}: {name[:20]!r}... makes the device-mapper name "
                              f"{len(dm_name(vg, name))} characters long ('-' counts twice); "
                              f"at most {MAX_DM_NAME}")
    return name
