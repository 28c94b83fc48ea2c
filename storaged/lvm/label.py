"""A cheap fingerprint of a PV's metadata: the floor under every event source.

Every metadata commit LVM makes rewrites the metadata area header of each PV
(the location, size and checksum of the current metadata text). Reading that
header (4 KiB, O_DIRECT so no stale page cache) costs microseconds and no LVM
command, so polling it twice a second notices any change an admin makes with
plain `lvm` commands even where no other event source exists.

Layout (lvm2 lib/label/label.h, lib/format_text/layout.h): a label sector
"LABELONE" in the first four sectors; after it the PV header: UUID, device
size, data areas and then metadata areas, each list ended by a zero entry;
each metadata area starts with the mda header.
"""
from __future__ import annotations

import asyncio
import mmap
import os
import struct

SECTOR = 512
_LABEL_SCAN = 4 * SECTOR
_ALIGN = 4096


def _read_direct(fd: int, offset: int, length: int) -> bytes:
    start = offset - offset % _ALIGN
    end = -(-(offset + length) // _ALIGN) * _ALIGN
    buf = mmap.mmap(-1, end - start)  # page aligned, as O_DIRECT wants
    try:
        n = os.preadv(fd, [buf], start)
        data = bytes(buf[:n])
    finally:
        buf.close()
    return data[offset - start:offset - start + length]


def metadata_areas(head: bytes) -> list[int]:
    """Offsets of the PV's metadata areas, from its first 2 KiB."""
    for sector in range(4):
        base = sector * SECTOR
        if head[base:base + 8] != b"LABELONE":
            continue
        offset_xl = struct.unpack_from("<I", head, base + 20)[0]
        pos = base + offset_xl + 32 + 8  # pv uuid, device size
        areas: list[list[int]] = [[], []]
        for kind in (0, 1):  # data areas, then metadata areas
            while pos + 16 <= len(head):
                off, size = struct.unpack_from("<QQ", head, pos)
                pos += 16
                if off == 0 and size == 0:
                    break
                areas[kind].append(off)
        return areas[1]
    return []


def fingerprint(device: str) -> bytes | None:
    """Bytes that change with every metadata commit on `device`; None if the
    device cannot be read or carries no LVM label."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        head = _read_direct(fd, 0, _LABEL_SCAN)
        parts = []
        for mda in metadata_areas(head):
            # mda_header: checksum, magic, version, start, size, then raw_locns.
            parts.append(_read_direct(fd, mda, SECTOR)[:128])
        return b"".join(parts) if parts else None
    except OSError:
        return None
    finally:
        os.close(fd)


MDA_HEADER = struct.Struct("<I16sIQQ")  # checksum, magic, version, start, size
RAW_LOCN = struct.Struct("<QQII")  # offset, size, checksum, flags: the current text


def metadata_text(device: str) -> str | None:
    """The VG metadata text in the device's first metadata area, as LVM last
    committed it (O_DIRECT: never a stale page cache); None if unreadable."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        areas = metadata_areas(_read_direct(fd, 0, _LABEL_SCAN))
        if not areas:
            return None
        header = _read_direct(fd, areas[0], SECTOR)
        _, _, _, start, size = MDA_HEADER.unpack_from(header, 0)
        offset, length, _, _ = RAW_LOCN.unpack_from(header, MDA_HEADER.size)
        if not length or offset >= size:
            return None
        first = min(length, size - offset)
        text = _read_direct(fd, start + offset, first)
        if first < length:  # the text wraps around the end of the circular area
            text += _read_direct(fd, start + SECTOR, length - first)
        return text.rstrip(b"\0").decode(errors="replace")
    except (OSError, struct.error):
        return None
    finally:
        os.close(fd)


async def metadata_text_of(device: str) -> str | None:
    """Off the event loop, like fingerprints()."""
    return await asyncio.get_running_loop().run_in_executor(None, metadata_text, device)


def read_error(device: str) -> str | None:
    """What reading the device's first 4 KiB (O_DIRECT: the device, not the
    page cache) fails with, e.g. "Input/output error"; None if it reads, or
    if it does not even open (a missing device is its source's problem())."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        _read_direct(fd, 0, _LABEL_SCAN)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)


async def read_errors(devices: list[str]) -> dict[str, str]:
    """Device -> read_error() for the devices that fail, off the event loop."""
    if not devices:
        return {}

    def probe() -> dict[str, str]:
        return {d: e for d, e in ((d, read_error(d)) for d in devices) if e}
    return await asyncio.get_running_loop().run_in_executor(None, probe)


def fingerprints_now(devices: list[str]) -> dict[str, bytes | None]:
    return {d: fingerprint(d) for d in devices}


async def fingerprints(devices: list[str]) -> dict[str, bytes | None]:
    """Off the event loop: a read of a device can hang (a dead NFS server)."""
    if not devices:
        return {}
    return await asyncio.get_running_loop().run_in_executor(None, fingerprints_now, devices)
