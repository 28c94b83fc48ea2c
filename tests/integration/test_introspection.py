"""The interfaces the daemon exports are the ones documented in
dbus/org.storaged.Storaged1.xml (the file tools and reviewers read)."""
import os

from lxml import etree

from tests.harness import MANAGER, MGR

SHIPPED = os.path.join(os.path.dirname(__file__), "..", "..", "dbus", "org.storaged.Storaged1.xml")


def interfaces(xml: str) -> dict[str, str]:
    root = etree.fromstring(xml.encode())
    out = {}
    for iface in root.findall("interface"):
        name = iface.get("name")
        if name.startswith("org.storaged."):
            for el in iface.iter():
                for attr in [a for a in el.attrib if a not in ("name", "type", "direction", "access")]:
                    del el.attrib[attr]
            for ann in iface.iter("annotation"):
                ann.getparent().remove(ann)
            out[name] = etree.tostring(iface, method="c14n").decode()
    return out


async def test_live_introspection_matches_shipped_xml(world, client):
    world.daemon()
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}i", ("i.img", "16M"))])
    vol = await client.call(pool, "org.storaged.Storaged1.Pool", "AllocateVolume", "sta{sv}",
                            ["v", 1024 * 1024, {}])
    job = await client.call(vol, "org.storaged.Storaged1.Volume", "Resize", "ta{sv}", [8 << 20, {}])
    live = {}
    for path in (MANAGER, pool, vol, job):
        live.update(interfaces(await client.call(path, "org.freedesktop.DBus.Introspectable",
                                                 "Introspect")))
    if os.environ.get("STORAGED_WRITE_INTROSPECTION"):
        # After adding a property to storaged/api.py or a method to storaged/bus:
        # STORAGED_WRITE_INTROSPECTION=1 pytest tests/integration/test_introspection.py
        await write_shipped(await client.call(MANAGER, "org.freedesktop.DBus.Introspectable",
                                              "Introspect"), [pool, vol, job], client)
    with open(SHIPPED) as f:
        shipped = interfaces(f.read())
    assert set(live) == {"org.storaged.Storaged1.Manager", "org.storaged.Storaged1.Pool",
                         "org.storaged.Storaged1.Volume", "org.storaged.Storaged1.Job"}
    for name in live:
        assert " ".join(live[name].split()) == " ".join(shipped[name].split()), name


HEADER = """<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<!-- storaged D-Bus API, version 1 (docs/api.md). Objects: Manager at /org/storaged/Storaged1/Manager,
     pools at /org/storaged/Storaged1/pools/<pool uuid>, volumes at
     .../pools/<pool uuid>/volumes/<LV uuid>, jobs at /org/storaged/Storaged1/jobs/<n>;
     ObjectManager at /org/storaged/Storaged1.
     Errors: org.storaged.Storaged1.Error.<Kind>. Written from the live daemon by
     tests/integration/test_introspection.py (STORAGED_WRITE_INTROSPECTION=1), which checks it. -->
"""


async def write_shipped(manager_xml, paths, client):
    node = etree.Element("node")
    for xml in [manager_xml] + [await client.call(p, "org.freedesktop.DBus.Introspectable",
                                                  "Introspect") for p in paths]:
        for iface in etree.fromstring(xml.encode()).findall("interface"):
            if iface.get("name").startswith("org.storaged."):
                for ann in iface.iter("annotation"):
                    ann.getparent().remove(ann)
                node.append(iface)
    etree.indent(node, space="  ")
    with open(SHIPPED, "w") as f:
        f.write(HEADER + etree.tostring(node, encoding="unicode") + "\n")
