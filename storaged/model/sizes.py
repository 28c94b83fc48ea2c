"""Sizes as users write them: bytes, or a number with a unit."""
from __future__ import annotations

import re

from ..errors import InvalidArgument

_UNITS = {
    "": 1, "b": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2,
    "g": 1024**3, "gib": 1024**3, "t": 1024**4, "tib": 1024**4,
    "p": 1024**5, "pib": 1024**5,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4, "pb": 1000**5,
}

# LVM sizes are 64-bit byte counts; anything larger is an overflow, not a wish.
MAX_SIZE = 2**63 - 1

# ASCII digits only: str.isdigit() and \d would take full-width and other digits.
_SIZE_RE = re.compile(r"\s*([0-9]+)(?:\.([0-9]+))?\s*([A-Za-z]*)\s*", re.ASCII)


def parse_size(text: str, unit: str | None = None, *, field: str = "size") -> int:
    """'10G', '512MiB', '20971520', or a number with a separate libvirt-style unit."""
    if text is None:
        raise InvalidArgument(f"{field}: missing")
    m = _SIZE_RE.fullmatch(text)
    if not m:
        raise InvalidArgument(f"{field}: {text!r} is not a size (use bytes or a number "
                              f"with K/M/G/T, KiB/MiB/GiB/TiB or KB/MB/GB/TB)")
    whole, frac, suffix = m.groups()
    if suffix and unit:
        raise InvalidArgument(f"{field}: {text!r} has a unit and a unit attribute {unit!r}")
    suffix = (suffix or unit or "").lower()
    if suffix not in _UNITS:
        raise InvalidArgument(f"{field}: unknown unit {suffix!r} in {text!r}")
    mult = _UNITS[suffix]
    value = int(whole) * mult
    if frac and int(frac):
        if mult == 1:
            raise InvalidArgument(f"{field}: {text!r} is not a whole number of bytes")
        # A fraction of a unit is rounded up to whole bytes.
        value += -(-int(frac) * mult // 10 ** len(frac))
    if value <= 0:
        raise InvalidArgument(f"{field}: must be greater than zero, got {text!r}")
    if value > MAX_SIZE:
        raise InvalidArgument(f"{field}: {text!r} is too large")
    return value


def check_size(value: int, *, field: str = "size") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{field}: must be a number of bytes")
    if value <= 0:
        raise InvalidArgument(f"{field}: must be greater than zero, got {value}")
    if value > MAX_SIZE:
        raise InvalidArgument(f"{field}: {value} is too large")
    return value


def human_size(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError
