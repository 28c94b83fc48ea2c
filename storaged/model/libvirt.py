"""libvirt's XML, translated: pure functions, no storage touched.

- A libvirt `<pool type='logical'>` becomes a storaged pool that adopts the VG as it is:
  it names the `<volume_group>` and lists no `<physical_volume>`, so nothing on disk is
  rewritten and Delete never removes the VG.
- libvirt's volume XML (`<allocation>`, `<target><format type='raw'/>`, what
  `virsh vol-dumpxml` writes) is reduced to storaged's `<volume>`.
- Every `<disk type='volume'>` of a `<domain>` is rewritten to a block disk in the text
  itself, so comments, attribute quotes and spacing stay exactly as they were.
"""
from __future__ import annotations

import os
import re
from typing import Callable

from lxml import etree

from ..errors import InvalidArgument, NotSupported, StoragedError
from .definitions import _parse_document

# Written by libvirt in a volume's XML; accepted back and ignored (storaged knows them).
_VOLUME_IGNORED = ("key", "source", "physical")
_TARGET_IGNORED = ("path", "permissions", "timestamps", "compat", "features", "nocow")


def pool_from_libvirt(xml: str) -> tuple[str, str]:
    """A libvirt logical pool's XML -> (storaged pool XML adopting its VG, pool name)."""
    root = _parse_document(xml, "libvirt pool XML")
    if root.tag != "pool":
        raise InvalidArgument(f"libvirt pool XML: the root element is <{root.tag}>, expected <pool>")
    kind = root.get("type")
    if kind != "logical":
        raise NotSupported(f"libvirt pool type {kind!r} cannot be imported: only type='logical' "
                           f"pools (LVM volume groups) are storage storaged manages")
    name = (root.findtext("name") or "").strip()
    if not name:
        raise InvalidArgument("libvirt pool XML: <name> is missing or empty")
    fmt = root.find("source/format")
    if fmt is not None and fmt.get("type", "lvm2") not in ("lvm2", "auto"):
        raise NotSupported(f"libvirt pool {name!r}: source format {fmt.get('type')!r} is not "
                           f"supported; only lvm2 volume groups are")
    # libvirt's own default: the VG is named after the pool.
    vg = (root.findtext("source/name") or "").strip() or name
    pool = etree.Element("pool", type="lvm")
    etree.SubElement(pool, "name").text = name
    uuid = (root.findtext("uuid") or "").strip()
    if uuid:
        etree.SubElement(pool, "uuid").text = uuid  # the same UUID as in libvirt
    etree.SubElement(pool, "volume_group").text = vg
    return etree.tostring(pool, encoding="unicode"), name


def libvirt_autostarted(config_dir: str, name: str) -> bool:
    """libvirt marks an autostart pool with a link storage/autostart/NAME.xml."""
    if "/" in name or name in (".", ".."):
        return False
    return os.path.lexists(os.path.join(config_dir, "storage", "autostart", f"{name}.xml"))


def volume_from_libvirt(root: etree._Element) -> etree._Element:
    """Reduce a libvirt <volume> to storaged's; a non-raw format is NotSupported.
    <allocation> is kept: storaged reads it as libvirt does (below <capacity>: thin)."""
    if root.get("type") not in (None, "block"):
        raise NotSupported(f"volume XML: type {root.get('type')!r} is not supported; "
                           f"storaged volumes are LVM logical volumes (type='block')")
    root.attrib.pop("type", None)
    target = root.find("target")
    if target is not None:
        fmt = target.find("format")
        if fmt is not None and fmt.get("type") != "raw":
            raise NotSupported(f"volume XML (line {fmt.sourceline}): format {fmt.get('type')!r} "
                               f"is not supported; LVM volumes are raw")
        for el in list(target):
            if el.tag == "format" or (el.tag in _TARGET_IGNORED and el.tag != "path"):
                target.remove(el)
        if len(target) == 0:
            root.remove(target)
    for tag in _VOLUME_IGNORED:
        for el in root.findall(tag):
            root.remove(el)
    return root  # <allocation> stays: below <capacity> it means thin (definitions.py)


# ------------------------------------------------------------------ domains

# Markup in document order: comments, CDATA, processing instructions and DOCTYPE are
# skipped whole; tags are matched with quoted attribute values (which may hold '>').
_ATTR = r"""[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*')"""
_MARKUP = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!.*?>"
                     rf"|<(/?)([^\s/>]+)((?:\s+{_ATTR})*)\s*(/?)>", re.S)
_ATTR_RE = re.compile(rf"(\s+)([^\s=/>]+)(\s*=\s*)(\"[^\"]*\"|'[^']*')")


def resolve_domain(xml: str, resolve_disk: Callable[[str], str]) -> str:
    """Rewrite every <devices><disk type='volume'> of a <domain> into a block disk, each
    resolved by resolve_disk (the one-disk ResolveDisk); everything else is kept byte for byte."""
    root = _parse_document(xml, "domain XML")
    if root.tag != "domain":
        raise InvalidArgument(f"domain XML: the root element is <{root.tag}>, expected <domain>")
    devs: list[str] = []
    for i, disk in enumerate(root.iterfind("devices/disk")):
        if disk.get("type") != "volume":
            continue
        where = f"domain XML disk {_disk_label(disk, i)} (line {disk.sourceline})"
        sources = disk.findall("source")
        if len(sources) != 1 or not sources[0].get("volume"):
            raise InvalidArgument(f"{where}: expected one <source volume='...'>")
        try:
            devs.append(_device_of(resolve_disk, sources[0].get("volume"), sources[0].get("pool")))
        except StoragedError as exc:
            raise type(exc)(f"{where}: {exc.message}") from None
        disk.set("type", "block")
        for attr in ("volume", "pool", "mode"):
            sources[0].attrib.pop(attr, None)
        sources[0].set("dev", devs[-1])
    out = _rewrite_text(xml, devs)
    # The text rewrite must mean exactly what the tree rewrite means.
    if etree.tostring(_parse_document(out, "domain XML"), method="c14n") != \
            etree.tostring(root, method="c14n"):
        raise InvalidArgument("domain XML: its markup could not be rewritten in place")
    return out


def _device_of(resolve_disk: Callable[[str], str], volume: str, pool: str | None) -> str:
    disk = etree.Element("disk", type="volume")
    source = etree.SubElement(disk, "source", volume=volume)
    if pool:
        source.set("pool", pool)
    return etree.fromstring(resolve_disk(etree.tostring(disk, encoding="unicode"))).find("source").get("dev")


def _disk_label(disk: etree._Element, index: int) -> str:
    target = disk.find("target")
    return repr(target.get("dev")) if target is not None and target.get("dev") else f"#{index}"


def _rewrite_text(xml: str, devs: list[str]) -> str:
    pieces, pos, stack = [], 0, []  # stack: (tag, is a volume disk)
    queue = list(devs)
    for m in _MARKUP.finditer(xml):
        closing, tag, attrs, empty = m.group(1), m.group(2), m.group(3), m.group(4)
        if tag is None:
            continue
        if closing:
            if stack:
                stack.pop()
            continue
        parent = stack[-1] if stack else None
        new = None
        if tag == "disk" and parent and parent[0] == "devices" and len(stack) == 2 \
                and _attr(attrs, "type") == "volume":
            new = _set_attrs(attrs, {"type": "block"})
            volume_disk = True
        else:
            volume_disk = False
            if tag == "source" and parent and parent[1] and queue:
                new = _set_attrs(attrs, {"volume": None, "pool": None, "mode": None,
                                         "dev": queue.pop(0)})
        if new is not None:
            pieces.append(xml[pos:m.start(3)])
            pieces.append(new)
            pos = m.end(3)
        if not empty:
            stack.append((tag, volume_disk))
    pieces.append(xml[pos:])
    return "".join(pieces)


def _attr(attrs: str, name: str) -> str | None:
    for m in _ATTR_RE.finditer(attrs):
        if m.group(2) == name:
            return m.group(4)[1:-1]
    return None


def _set_attrs(attrs: str, changes: dict[str, str | None]) -> str:
    """Change attribute values in place (keeping their quotes), drop those set to None,
    append new ones in the quote style the element already uses."""
    out, pos, quote, left = [], 0, "'", dict(changes)
    for m in _ATTR_RE.finditer(attrs):
        name, value = m.group(2), m.group(4)
        quote = value[0]
        out.append(attrs[pos:m.start()])
        pos = m.end()
        if name not in left:
            out.append(m.group(0))
        elif left[name] is not None:
            out.append(f"{m.group(1)}{name}{m.group(3)}{quote}{_escape(left[name], quote)}{quote}")
        left.pop(name, None)
    out.append(attrs[pos:])
    for name, value in left.items():
        if value is not None:
            out.append(f" {name}={quote}{_escape(value, quote)}{quote}")
    return "".join(out)


def _escape(value: str, quote: str) -> str:
    value = value.replace("&", "&amp;").replace("<", "&lt;")
    return value.replace(quote, "&quot;" if quote == '"' else "&apos;")
