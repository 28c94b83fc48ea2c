"""Pool and volume definitions and their XML form.

Why this file is over 400 lines: parsing and writing of one format stay side
by side, so that a field added to one is seen added to the other.

Parsing is hardened (no DTD, no entities, no network, a size limit), checked
against the RelaxNG schema shipped beside this module, then checked field by
field so that every error names the field at fault.
"""
from __future__ import annotations

import ipaddress
import os
import re
import uuid as uuidlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from lxml import etree

from ..errors import InvalidArgument
from .names import check_lv_in_vg, check_lv_name, check_pool_name, check_vg_name
from .sizes import parse_size
from .thin import ThinPoolDef, parse_thin_pool, thin_pool_element

MAX_XML_BYTES = 256 * 1024
# The smallest file a PV can be made of and still hold something: LVM's
# metadata area (the first MiB) and one extent of the default 4 MiB.
MIN_PV_FILE_SIZE = 5 * 1024 * 1024


@dataclass(frozen=True)
class FileSource:
    """A sparse file on a loop device."""

    path: str
    size: int | None = None
    type = "file"

    @property
    def key(self) -> str:
        return self.path


@dataclass(frozen=True)
class DeviceSource:
    """A block device used as it is."""

    path: str
    type = "device"

    @property
    def key(self) -> str:
        return self.path


@dataclass(frozen=True)
class IscsiSource:
    """A LUN of an iSCSI target."""

    host: str
    target: str
    port: int = 3260
    lun: int = 0
    auth_file: str | None = None
    type = "iscsi"

    @property
    def key(self) -> str:
        return f"{self.host}:{self.port}/{self.target}/{self.lun}"


@dataclass(frozen=True)
class NfsSource:
    """A sparse file on an NFS export, on a loop device."""

    server: str
    export: str
    file: str
    size: int | None = None
    type = "nfs"

    @property
    def key(self) -> str:
        return f"{self.server}:{self.export}/{self.file}"


Source = FileSource | DeviceSource | IscsiSource | NfsSource
SOURCE_TYPES = ("file", "device", "iscsi", "nfs")


@dataclass(frozen=True)
class VolumeDef:
    """A volume declared in a pool's XML, allocated at build."""

    name: str
    capacity: int
    thin: bool = False  # libvirt's convention: <allocation> below <capacity>


@dataclass
class PoolDef:
    """A pool's definition, as its XML says."""

    name: str
    uuid: str
    volume_group: str | None = None
    sources: list[Source] = field(default_factory=list)
    volumes: list[VolumeDef] = field(default_factory=list)
    thin_pool: ThinPoolDef | None = None
    # <locking type='sanlock'/>: a VG shared by several hosts through lvmlockd
    # ("" for a pool of this host alone).
    lock_type: str = ""
    # <pool autostart='yes|no'>: what CreatePool does with the new pool; not stored
    # (autostart has its own marker file, changed with SetAutostart).
    autostart: bool = True

    @property
    def vg_name(self) -> str:
        return self.volume_group or self.name


# ---------------------------------------------------------------- parsing

@lru_cache(maxsize=1)
def _schema() -> etree.RelaxNG:
    text = resources.files(__package__).joinpath("schemas/pool.rng").read_bytes()
    return etree.RelaxNG(etree.fromstring(text, _parser()))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True,
                           remove_pis=True)


def _parse_document(xml: str, what: str) -> etree._Element:
    if not isinstance(xml, str):
        raise InvalidArgument(f"{what}: XML must be a string")
    data = xml.encode("utf-8", errors="strict") if xml else b""
    if len(data) > MAX_XML_BYTES:
        raise InvalidArgument(f"{what}: XML is larger than {MAX_XML_BYTES} bytes")
    if not data.strip():
        raise InvalidArgument(f"{what}: XML is empty")
    if b"<!DOCTYPE" in data.upper() or b"<!ENTITY" in data.upper():
        raise InvalidArgument(f"{what}: DOCTYPE and entity declarations are not allowed")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidArgument(f"{what}: malformed XML: {exc}") from None
    if root.getroottree().docinfo.doctype:
        raise InvalidArgument(f"{what}: DOCTYPE is not allowed")
    return root


def _validate(root: etree._Element, what: str) -> None:
    schema = _schema()
    if schema.validate(root):
        return
    # The first error is the most specific one ("Invalid attribute sise for
    # element file"); the later ones only say that its parents failed too.
    errors = [e for e in schema.error_log if e.path] or [schema.error_log.last_error]
    err = errors[0]
    message = err.message
    m = re.fullmatch(r"Element (\S+) failed to validate attributes", message)
    if m:
        # libxml2 does not say which attribute: name the ones the element has.
        el = next(root.iter(m.group(1)), None)
        attrs = " ".join(f"{k}={v!r}" for k, v in (el.attrib.items() if el is not None else []))
        message = (f"an attribute of <{m.group(1)}> has a value that is not allowed"
                   + (f" ({attrs})" if attrs else ""))
    where = f"<{err.path.strip('/').replace('/', '><')}>" if err.path else "the document"
    raise InvalidArgument(f"{what}: line {err.line}, {where}: {message}")


def _text(el: etree._Element | None, field_name: str) -> str:
    if el is None:
        raise InvalidArgument(f"{field_name}: missing")
    value = (el.text or "").strip()
    if not value:
        raise InvalidArgument(f"{field_name} (line {el.sourceline}): must not be empty")
    return value


def check_file_path(path: str, field_name: str) -> str:
    if "\0" in path:
        raise InvalidArgument(f"{field_name}: contains a NUL byte")
    if not path.startswith("/"):
        raise InvalidArgument(f"{field_name}: {path!r} must be an absolute path")
    if os.path.normpath(path) != path or path.startswith("//"):
        raise InvalidArgument(f"{field_name}: {path!r} is not normalised "
                              f"(write {os.path.normpath(path)!r})")
    if path == "/" or path.endswith("/"):
        raise InvalidArgument(f"{field_name}: {path!r} names a directory, not a file")
    return path


def check_device_path(path: str, field_name: str) -> str:
    check_file_path(path, field_name)
    if not path.startswith("/dev/"):
        raise InvalidArgument(f"{field_name}: {path!r} is not under /dev")
    return path


_HOST_RE = re.compile(r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?")
# RFC 3720/3721 names: iqn.YYYY-MM.reversed.domain[:identifier], eui.<16 hex>,
# naa.<16 or 32 hex>; at most 223 bytes, and only characters a name may hold.
_IQN_RE = re.compile(r"(?=.{1,223}$)(iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?"
                     r"(:[A-Za-z0-9.:_-]+)?|eui\.[0-9A-Fa-f]{16}|naa\.(?:[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}))")


def check_host(host: str, field_name: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOST_RE.fullmatch(host):
        raise InvalidArgument(f"{field_name}: {host!r} is not a host name or IP address")
    return host


def _int_field(text: str, field_name: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"[0-9]+", text) or not lo <= int(text) <= hi:
        raise InvalidArgument(f"{field_name}: {text!r} must be a whole number from {lo} to {hi}")
    return int(text)


def _pv_file_size(el: etree._Element, field_name: str) -> int | None:
    if el.get("size") is None:
        return None
    size = parse_size(el.get("size"), field=field_name)
    if size < MIN_PV_FILE_SIZE:
        raise InvalidArgument(f"{field_name}: {el.get('size')!r} is smaller than the smallest "
                              f"physical volume file, 5M (1 MiB of LVM metadata and one 4 MiB "
                              f"extent)")
    return size


def _parse_source(el: etree._Element, index: int) -> Source:
    kind = el.get("type")
    where = f"physical_volume[{index}] (line {el.sourceline})"
    if kind == "file":
        f = el.find("file")
        path = check_file_path(_text(f, f"{where} file"), f"{where} file")
        size = _pv_file_size(f, f"{where} file size")
        return FileSource(path=path, size=size)
    if kind == "device":
        return DeviceSource(path=check_device_path(_text(el.find("device"), f"{where} device"),
                                                   f"{where} device"))
    if kind == "iscsi":
        host_el = el.find("host")
        host = check_host(_text(host_el, f"{where} host"), f"{where} host")
        port = _int_field(host_el.get("port", "3260"), f"{where} host port", 1, 65535)
        target = _text(el.find("target"), f"{where} target")
        if not _IQN_RE.fullmatch(target):
            raise InvalidArgument(f"{where} target: {target!r} is not an iSCSI name (iqn.YYYY-MM.domain:name)")
        lun_el = el.find("lun")
        lun = _int_field(_text(lun_el, f"{where} lun"), f"{where} lun", 0, 16383) if lun_el is not None else 0
        auth = el.find("auth")
        auth_file = check_file_path(auth.get("file"), f"{where} auth file") if auth is not None else None
        return IscsiSource(host=host, port=port, target=target, lun=lun, auth_file=auth_file)
    if kind == "nfs":
        server = check_host(_text(el.find("server"), f"{where} server"), f"{where} server")
        export = check_file_path(_text(el.find("export"), f"{where} export"), f"{where} export") \
            if _text(el.find("export"), f"{where} export") != "/" else "/"
        f = el.find("file")
        name = _text(f, f"{where} file")
        if "/" in name or name in (".", "..") or "\0" in name:
            raise InvalidArgument(f"{where} file: {name!r} must be a plain file name on the export")
        size = _pv_file_size(f, f"{where} file size")
        return NfsSource(server=server, export=export, file=name, size=size)
    raise InvalidArgument(f"{where}: unknown type {kind!r}")


def _parse_volume(el: etree._Element, where: str, vg: str | None = None) -> VolumeDef:
    name = _text(el.find("name"), f"{where} name")
    if vg:
        check_lv_in_vg(name, vg, f"{where} name")
    else:
        check_lv_name(name, f"{where} name")
    cap = el.find("capacity")
    capacity = parse_size(_text(cap, f"{where} capacity"), cap.get("unit"),
                          field=f"{where} capacity")
    alloc = el.find("allocation")
    text = None if alloc is None else _text(alloc, f"{where} allocation")
    allocation = capacity if text is None else 0 if text.strip() == "0" else parse_size(
        text, alloc.get("unit"), field=f"{where} allocation")
    return VolumeDef(name=name, capacity=capacity, thin=allocation < capacity)


def parse_pool(xml: str) -> PoolDef:
    root = _parse_document(xml, "pool XML")
    if root.tag != "pool":
        raise InvalidArgument(f"pool XML: the root element is <{root.tag}>, expected <pool>")
    if root.get("type") not in (None, "lvm"):
        raise InvalidArgument(f"pool XML: line {root.sourceline}, <pool>: type "
                              f"{root.get('type')!r} is not supported; "
                              f"storaged pools are <pool type='lvm'>")
    for i, el in enumerate(root.findall("physical_volume")):
        if el.get("type") not in SOURCE_TYPES:
            raise InvalidArgument(f"physical_volume[{i}] (line {el.sourceline}): type "
                                  f"{el.get('type')!r} is not one of {', '.join(SOURCE_TYPES)}")
    _validate(root, "pool XML")
    name = check_pool_name(_text(root.find("name"), "pool name"))
    uuid_el = root.find("uuid")
    if uuid_el is not None:
        try:
            pool_uuid = str(uuidlib.UUID(_text(uuid_el, "pool uuid")))
        except ValueError:
            raise InvalidArgument(f"pool uuid: {uuid_el.text!r} is not a UUID") from None
    else:
        pool_uuid = str(uuidlib.uuid4())
    vg_el = root.find("volume_group")
    vg = check_vg_name(_text(vg_el, "volume_group"), "volume_group") if vg_el is not None else None
    sources = [_parse_source(el, i) for i, el in enumerate(root.findall("physical_volume"))]
    seen: set[str] = set()
    for src in sources:
        if src.key in seen:
            raise InvalidArgument(f"physical_volume: {src.key!r} is listed twice")
        seen.add(src.key)
    volumes = [_parse_volume(el, f"volume[{i}]", vg or name)
               for i, el in enumerate(root.findall("volume"))]
    names = [v.name for v in volumes]
    if len(set(names)) != len(names):
        raise InvalidArgument("volume: the same volume name is declared twice")
    locking = root.find("locking")
    lock_type = locking.get("type") if locking is not None else ""
    thin_pool = parse_thin_pool(root.find("thin_pool"))
    if lock_type:
        _check_shared(sources, thin_pool, volumes)
    return PoolDef(name=name, uuid=pool_uuid, volume_group=vg, sources=sources, volumes=volumes,
                   thin_pool=thin_pool, lock_type=lock_type,
                   autostart=root.get("autostart", "yes") == "yes")


def _check_shared(sources: list[Source], thin_pool: ThinPoolDef | None,
                  volumes: list[VolumeDef]) -> None:
    # Every host must see the same PVs: a loop device over a file is this host's alone.
    local = [s.key for s in sources if s.type not in ("device", "iscsi")]
    if local:
        raise InvalidArgument(f"locking: a shared pool's physical volumes must be devices every "
                              f"host sees (type 'device' or 'iscsi'), not {local[0]!r}")
    if thin_pool or any(v.thin for v in volumes):
        raise InvalidArgument("locking: a shared pool has no thin pool or thin volumes: LVM "
                              "activates them on one host only, never shared, so no other host "
                              "could take them over")


def parse_volume(xml: str) -> VolumeDef:
    root = _parse_document(xml, "volume XML")
    if root.tag != "volume":
        raise InvalidArgument(f"volume XML: the root element is <{root.tag}>, expected <volume>")
    from .libvirt import volume_from_libvirt  # here: libvirt.py builds on this module
    _validate(volume_from_libvirt(root), "volume XML")
    return _parse_volume(root, "volume")


def parse_source(xml: str) -> Source:
    root = _parse_document(xml, "physical_volume XML")
    if root.tag != "physical_volume":
        raise InvalidArgument(f"physical_volume XML: the root element is <{root.tag}>, "
                              f"expected <physical_volume>")
    # Validate it as it would stand inside a pool.
    wrapper = etree.Element("pool", type="lvm")
    etree.SubElement(wrapper, "name").text = "x"
    wrapper.append(root)
    _validate(wrapper, "physical_volume XML")
    return _parse_source(root, 0)


# ---------------------------------------------------------------- writing

def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, **attrs)
    if text is not None:
        el.text = text
    return el


def source_element(src: Source) -> etree._Element:
    el = etree.Element("physical_volume", type=src.type)
    if isinstance(src, FileSource):
        attrs = {"size": str(src.size)} if src.size else {}
        _sub(el, "file", src.path, **attrs)
    elif isinstance(src, DeviceSource):
        _sub(el, "device", src.path)
    elif isinstance(src, IscsiSource):
        _sub(el, "host", src.host, port=str(src.port))
        _sub(el, "target", src.target)
        _sub(el, "lun", str(src.lun))
        if src.auth_file:
            _sub(el, "auth", type="chap", file=src.auth_file)
    elif isinstance(src, NfsSource):
        _sub(el, "server", src.server)
        _sub(el, "export", src.export)
        attrs = {"size": str(src.size)} if src.size else {}
        _sub(el, "file", src.file, **attrs)
    return el


def volume_element(name: str, capacity: int, key: str | None = None,
                   path: str | None = None) -> etree._Element:
    el = etree.Element("volume")
    _sub(el, "name", name)
    if key:
        _sub(el, "key", key)
    _sub(el, "capacity", str(capacity), unit="bytes")
    if path:
        _sub(_sub(el, "target"), "path", path)
    return el


def pool_element(pool: PoolDef) -> etree._Element:
    root = etree.Element("pool", type="lvm")
    _sub(root, "name", pool.name)
    _sub(root, "uuid", pool.uuid)
    if pool.volume_group:
        _sub(root, "volume_group", pool.volume_group)
    if pool.lock_type:
        _sub(root, "locking", type=pool.lock_type)
    for src in pool.sources:
        root.append(source_element(src))
    if pool.thin_pool:
        root.append(thin_pool_element(pool.thin_pool))
    for vol in pool.volumes:
        root.append(volume_element(vol.name, vol.capacity))
    return root


def to_string(el: etree._Element) -> str:
    return etree.tostring(el, pretty_print=True, encoding="unicode")


def pool_to_xml(pool: PoolDef) -> str:
    return to_string(pool_element(pool))
