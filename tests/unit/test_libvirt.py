"""libvirt's XML translated: pools adopted as they are, volumes reduced, domains
rewritten in place (everything but the volume disks kept byte for byte)."""
import difflib
import glob
import os

import pytest
from lxml import etree

from storaged.errors import InvalidArgument, NotFound, NotSupported
from storaged.model.definitions import parse_pool, parse_volume
from storaged.model.libvirt import libvirt_autostarted, pool_from_libvirt, resolve_domain

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "libvirt")
DOMAINS = sorted(glob.glob(os.path.join(DATA, "domain-*.xml")))


def read(name):
    with open(os.path.join(DATA, name)) as f:
        return f.read()


def fake_resolve_disk(disk_xml):
    """The one-disk ResolveDisk, for volumes named in the pools 'fast' and 'guests'."""
    disk = etree.fromstring(disk_xml)
    source = disk.find("source")
    if source.get("pool") not in (None, "fast", "guests"):
        raise NotFound(f"no pool named {source.get('pool')!r}")
    disk.set("type", "block")
    dev = f"/dev/vg_{source.attrib.pop('pool', 'any')}/{source.attrib.pop('volume')}"
    source.set("dev", dev)
    return etree.tostring(disk, encoding="unicode")


def test_logical_pool_becomes_an_adopting_pool():
    xml, name = pool_from_libvirt(read("pool-logical.xml").replace("VG_NAME", "vg_fast"))
    pool = parse_pool(xml)
    assert name == pool.name == "fast"
    assert pool.uuid == "2b8e6c1a-5d4f-4e3a-9b2c-7d8e9f0a1b2c"  # libvirt's own UUID kept
    assert pool.volume_group == "vg_fast" and pool.sources == [] and pool.volumes == []


def test_logical_pool_without_source_name_uses_the_pool_name_as_libvirt_does():
    xml, _ = pool_from_libvirt("<pool type='logical'><name>vg1</name><source/></pool>")
    assert parse_pool(xml).volume_group == "vg1"


@pytest.mark.parametrize("kind", ["dir", "fs", "netfs", "disk", "iscsi", "rbd", "zfs", None])
def test_other_pool_types_are_not_supported_by_name(kind):
    attr = f" type='{kind}'" if kind else ""
    with pytest.raises(NotSupported) as exc:
        pool_from_libvirt(f"<pool{attr}><name>p</name></pool>")
    assert repr(kind) in exc.value.message


def test_bad_libvirt_pools_are_invalid_arguments():
    for xml in ("<pool type='logical'><name/></pool>", "<volume/>", "<pool type='logical'>",
                "<!DOCTYPE x [<!ENTITY a 'b'>]><pool type='logical'><name>&a;</name></pool>"):
        with pytest.raises(InvalidArgument):
            pool_from_libvirt(xml)
    with pytest.raises(NotSupported, match="'gpt'"):
        pool_from_libvirt("<pool type='logical'><name>p</name><source><format type='gpt'/></source></pool>")


def test_autostart_link(tmp_path):
    os.makedirs(tmp_path / "storage" / "autostart")
    os.symlink("../fast.xml", tmp_path / "storage" / "autostart" / "fast.xml")  # dangling is fine
    assert libvirt_autostarted(str(tmp_path), "fast")
    assert not libvirt_autostarted(str(tmp_path), "slow")
    assert not libvirt_autostarted(str(tmp_path), "../autostart/fast")


def test_libvirt_volume_xml_is_accepted():
    vol = parse_volume("<volume type='block'><name>disk1</name><key>abc</key>"
                       "<capacity unit='G'>2</capacity><allocation unit='G'>2</allocation>"
                       "<physical unit='bytes'>2147483648</physical>"
                       "<target><path>/dev/vg/disk1</path><format type='raw'/>"
                       "<permissions><mode>0600</mode><owner>0</owner><group>6</group></permissions>"
                       "</target></volume>")
    assert (vol.name, vol.capacity) == ("disk1", 2 * 1024**3)


def test_non_raw_volumes_are_not_supported():
    for fmt in ("qcow2", "vmdk"):
        with pytest.raises(NotSupported, match=f"'{fmt}'"):
            parse_volume(f"<volume><name>v</name><capacity>1M</capacity>"
                         f"<target><format type='{fmt}'/></target></volume>")
    with pytest.raises(NotSupported, match="'file'"):
        parse_volume("<volume type='file'><name>v</name><capacity>1048576</capacity></volume>")
    with pytest.raises(InvalidArgument, match="allocation"):
        parse_volume("<volume><name>v</name><capacity>1048576</capacity><allocation>lots</allocation></volume>")


@pytest.mark.parametrize("path", DOMAINS, ids=os.path.basename)
def test_domain_rewrite_changes_only_volume_disk_lines(path):
    with open(path) as f:
        original = f.read()
    out = resolve_domain(original, fake_resolve_disk)
    volume_disks = original.count("<disk type='volume'") + original.count('<disk type="volume"')
    changed = [line for line in difflib.ndiff(original.splitlines(), out.splitlines())
               if line[:2] in ("- ", "+ ")]
    assert len(changed) == 4 * volume_disks  # the <disk> and <source> lines, each - and +
    removed = [line for line in changed if line.startswith("- ")]
    assert all("type='volume'" in line or 'type="volume"' in line or "volume=" in line for line in removed)
    assert "type='volume'" not in out and 'type="volume"' not in out and "volume=" not in out
    if volume_disks:
        assert "<source dev='/dev/vg_fast/web01-root'/>" in out or "dev='/dev/vg_guests/db02-os'" in out
    else:
        assert out == original


def test_comments_and_quotes_survive_and_commented_disks_stay():
    xml = ("<domain type='kvm'><name>c</name><devices><!-- <disk type='volume'> -->\n"
           "<disk type=\"volume\" device=\"cdrom\"><source volume=\"a&amp;b\" pool=\"fast\" "
           "mode=\"host\"/><target dev=\"hdc\"/><!-- > --></disk></devices></domain>")
    out = resolve_domain(xml, fake_resolve_disk)
    assert out == xml.replace('<disk type="volume"', '<disk type="block"').replace(
        ' volume="a&amp;b" pool="fast" mode="host"/>', ' dev="/dev/vg_fast/a&amp;b"/>')


def test_domain_errors_name_the_disk_and_change_nothing():
    xml = read("domain-db.xml").replace("pool='fast'", "pool='gone'")
    with pytest.raises(NotFound) as exc:
        resolve_domain(xml, fake_resolve_disk)
    assert "'sdc'" in exc.value.message and "gone" in exc.value.message
    with pytest.raises(InvalidArgument, match="<domain>"):
        resolve_domain("<disk type='volume'/>", fake_resolve_disk)
    with pytest.raises(InvalidArgument, match="source"):
        resolve_domain("<domain><devices><disk type='volume'><target dev='vda'/></disk></devices></domain>",
                       fake_resolve_disk)
