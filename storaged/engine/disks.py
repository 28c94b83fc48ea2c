"""ResolveDisk: a guest's <disk type='volume'> to a block device <disk>."""
from __future__ import annotations

import logging

from lxml import etree

from ..errors import InvalidArgument, NotFound
from ..model.definitions import _parse_document, parse_pool
from ..model.libvirt import libvirt_autostarted, pool_from_libvirt, resolve_domain
from ..model.state import Pool

log = logging.getLogger(__name__)


class Disks:
    """Part of the Engine (see engine/__init__.py); uses its attributes."""

    async def import_libvirt_pool(self, xml: str) -> Pool:
        """Adopt a libvirt logical pool's VG as it is, started; autostart as in libvirt."""
        definition, name = pool_from_libvirt(xml)
        vg = parse_pool(definition).vg_name
        if vg not in set((await self.lvm.pv_vg_names()).values()):
            raise NotFound(f"libvirt pool {name!r}: volume group {vg!r} does not exist on this host")
        pool = await self.define(definition)
        await self.start(pool)
        if libvirt_autostarted(self.settings.libvirt_config_dir, name):
            await self.set_autostart(pool, True)
        return pool

    def resolve_domain(self, xml: str) -> str:
        """Every <disk type='volume'> of a libvirt <domain> resolved (model/libvirt.py)."""
        return resolve_domain(xml, self.resolve_disk)

    def resolve_disk(self, xml: str) -> str:
        """<disk type='volume'><source volume='X' [pool='P']/> -> <disk type='block'><source dev=.../>"""
        root = _parse_document(xml, "disk XML")
        if root.tag != "disk":
            raise InvalidArgument(f"disk XML: the root element is <{root.tag}>, expected <disk>")
        if root.get("type") != "volume":
            raise InvalidArgument(f"disk XML: type is {root.get('type')!r}; only type='volume' "
                                  f"disks are resolved")
        sources = root.findall("source")
        if len(sources) != 1:
            raise InvalidArgument("disk XML: expected exactly one <source> element")
        source = sources[0]
        name = source.get("volume")
        if not name:
            raise InvalidArgument("disk XML: <source> has no volume attribute")
        pool_name = source.get("pool")
        if pool_name:
            vol = self.volume(self.pool_by_name(pool_name), name)
        else:
            found = [(p, p.volume_named(name)) for p in self.pools.values()]
            found = [(p, v) for p, v in found if v]
            if not found:
                raise NotFound(f"no running pool has a volume named {name!r}")
            if len(found) > 1:
                raise InvalidArgument(f"volume {name!r} is ambiguous: it is in pools "
                                      f"{', '.join(sorted(p.name for p, _ in found))}; "
                                      f"name the pool with pool='...'")
            vol = found[0][1]
        root.set("type", "block")
        for attr in ("volume", "pool"):
            source.attrib.pop(attr, None)
        source.set("dev", vol.path)
        return etree.tostring(root, encoding="unicode")
