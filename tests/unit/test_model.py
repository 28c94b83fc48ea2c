"""Definitions, sizes and names: the checks that make every error name its field."""
import pytest

from storaged.errors import InvalidArgument
from storaged.lvm.metadata import find_lv
from storaged.lvm.report import parse_fullreport
from storaged.model.definitions import (DeviceSource, FileSource, IscsiSource, NfsSource,
                                        parse_pool, parse_source, parse_volume, pool_to_xml)
from storaged.model.names import check_lv_name, check_pool_name, check_lv_in_vg
from storaged.model.sizes import human_size, parse_size

SEED = """<pool type='lvm'>
  <name>default</name>
  <volume_group>vg_default</volume_group>
  <physical_volume type='file'>
    <file size='10G'>/var/lib/storaged/images/default.img</file>
  </physical_volume>
  <physical_volume type='device'>
    <device>/dev/sdb</device>
  </physical_volume>
  <physical_volume type='iscsi'>
    <host port='3260'>192.0.2.10</host>
    <target>iqn.2007-01.org.example:store</target>
    <lun>1</lun>
  </physical_volume>
  <physical_volume type='nfs'>
    <server>filer.example</server>
    <export>/exports/pools</export>
    <file size='50G'>pool-a.img</file>
  </physical_volume>
  <volume><name>TestVolume</name><capacity unit='G'>2</capacity></volume>
</pool>"""


@pytest.mark.parametrize("text,unit,expected", [
    ("20971520", None, 20971520), ("10G", None, 10 * 1024**3), ("512MiB", None, 512 * 1024**2),
    ("1K", None, 1024), ("2", "G", 2 * 1024**3), ("1GB", None, 10**9), ("3TB", None, 3 * 10**12),
    ("1.5G", None, 3 * 1024**3 // 2), ("4096", "bytes", 4096), (" 7 M ", None, 7 * 1024**2),
])
def test_sizes(text, unit, expected):
    assert parse_size(text, unit) == expected


@pytest.mark.parametrize("text,unit,says", [
    ("0", None, "greater than zero"), ("-1", None, "not a size"), ("12Q", None, "unknown unit"),
    ("lots", None, "not a size"), ("1G", "M", "unit attribute"), ("99999999999999999999T", None, "too large"),
    ("", None, "not a size"),
])
def test_bad_sizes_name_the_field(text, unit, says):
    with pytest.raises(InvalidArgument, match=says) as info:
        parse_size(text, unit, field="volume capacity")
    assert info.value.message.startswith("volume capacity")


def test_human_size():
    assert human_size(10 * 1024**3) == "10.0 GiB"
    assert human_size(512) == "512 B"


@pytest.mark.parametrize("name", ["-x", "", ".", "..", "a b", "a/b", "x" * 128, "é"])
def test_bad_names(name):
    with pytest.raises(InvalidArgument):
        check_lv_name(name)
    with pytest.raises(InvalidArgument):
        check_pool_name(name)


@pytest.mark.parametrize("name", ["snapshot", "pvmove0", "a_tmeta", "x_rimage_0", "y_mlog"])
def test_lvm_reserved_lv_names(name):
    with pytest.raises(InvalidArgument, match="reserved"):
        check_lv_name(name)


def test_good_names():
    for name in ("TestVolume", "a.b+c_d-e", "x" * 127):
        assert check_lv_name(name) == name


def test_seed_pool_parses_and_round_trips():
    pool = parse_pool(SEED)
    assert pool.name == "default" and pool.vg_name == "vg_default"
    assert pool.sources == [
        FileSource("/var/lib/storaged/images/default.img", 10 * 1024**3),
        DeviceSource("/dev/sdb"),
        IscsiSource(host="192.0.2.10", port=3260, target="iqn.2007-01.org.example:store", lun=1),
        NfsSource(server="filer.example", export="/exports/pools", file="pool-a.img", size=50 * 1024**3),
    ]
    assert pool.volumes[0].capacity == 2 * 1024**3
    xml = pool_to_xml(pool)
    assert "size=\"10737418240\"" in xml  # written back as bytes
    assert parse_pool(xml) == pool
    assert pool_to_xml(parse_pool(xml)) == xml


def test_vg_defaults_to_pool_name():
    pool = parse_pool("<pool type='lvm'><name>p</name></pool>")
    assert pool.vg_name == "p" and pool.volume_group is None


def _iscsi(host="192.0.2.1", target="iqn.2007-01.org.example:x", lun="1", port="3260"):
    return (f"<pool type='lvm'><name>p</name><physical_volume type='iscsi'><host port='{port}'>{host}"
            f"</host><target>{target}</target><lun>{lun}</lun></physical_volume></pool>")


def _nfs(server="filer.example", export="/exports", file="a.img"):
    return (f"<pool type='lvm'><name>p</name><physical_volume type='nfs'><server>{server}</server>"
            f"<export>{export}</export><file size='1G'>{file}</file></physical_volume></pool>")


@pytest.mark.parametrize("xml,says", [
    (_iscsi(host="-oProxyCommand=x"), "host"),
    (_iscsi(host="a..b"), "host"),
    (_iscsi(host="x" * 254), "host"),
    (_iscsi(host="h;reboot"), "host"),
    (_iscsi(port="0"), "port"),
    (_iscsi(port="-1"), "port"),
    (_iscsi(lun="16384"), "lun"),
    (_iscsi(lun="1x"), "lun"),
    (_iscsi(target="iqn.2007-13.org.example:x"), "iSCSI name"),
    (_iscsi(target="iqn.2007-01.org.example:x;rm -rf /"), "iSCSI name"),
    (_iscsi(target="iqn.2007-01.org.example:$(id)"), "iSCSI name"),
    (_iscsi(target="naa.0123"), "iSCSI name"),
    (_iscsi(target="iqn.2007-01.org.example:" + "x" * 220), "iSCSI name"),
    (_nfs(server="-o"), "server"),
    (_nfs(server="a b"), "server"),
    (_nfs(export="exports"), "absolute"),
    (_nfs(export="/exports/../etc"), "normalised"),
    (_nfs(export="/exports/"), "normalised"),
    (_nfs(file="a/b.img"), "plain file name"),
    (_nfs(file=".."), "plain file name"),
])
def test_hostile_remote_fields_name_the_field(xml, says):
    with pytest.raises(InvalidArgument, match=says):
        parse_pool(xml)


def test_good_remote_fields():
    assert parse_pool(_iscsi()).sources[0].target == "iqn.2007-01.org.example:x"
    assert parse_pool(_iscsi(host="::1", target="eui.0123456789abcdef")).sources[0].host == "::1"
    assert parse_pool(_nfs(export="/")).sources[0].export == "/"


@pytest.mark.parametrize("xml,says", [
    ("<pool type='lvm'><name>p</name>", "malformed XML"),
    ("<pool type='zfs'><name>p</name></pool>", "line 1"),
    ("<volume><name>v</name></volume>", "expected <pool>"),
    ("<pool type='lvm'><name>p</name><physical_volume type='file'><file>rel.img</file>"
     "</physical_volume></pool>", "absolute"),
    ("<pool type='lvm'><name>p</name><physical_volume type='file'><file>/a/../b.img</file>"
     "</physical_volume></pool>", "normalised"),
    ("<pool type='lvm'><name>p</name><physical_volume type='device'><device>/etc/passwd</device>"
     "</physical_volume></pool>", "not under /dev"),
    ("<pool type='lvm'><name>p</name><physical_volume type='iscsi'><host>bad host</host>"
     "<target>iqn.2007-01.org.example:x</target></physical_volume></pool>", "host"),
    ("<pool type='lvm'><name>p</name><physical_volume type='iscsi'><host port='99999'>h</host>"
     "<target>iqn.2007-01.org.example:x</target></physical_volume></pool>", "port"),
    ("<pool type='lvm'><name>p</name><physical_volume type='iscsi'><host>h</host>"
     "<target>not-an-iqn</target></physical_volume></pool>", "iSCSI name"),
    ("<pool type='lvm'><name>p</name><physical_volume type='nfs'><server>s</server><export>/e</export>"
     "<file size='1G'>../x.img</file></physical_volume></pool>", "plain file name"),
    ("<pool type='lvm'><name>p</name><uuid>nope</uuid></pool>", "not a UUID"),
    ("<pool type='lvm'><name>p</name><physical_volume type='file'><file size='1G'>/a.img</file>"
     "</physical_volume><physical_volume type='file'><file size='1G'>/a.img</file>"
     "</physical_volume></pool>", "listed twice"),
    ('<!DOCTYPE pool [<!ENTITY e SYSTEM "file:///etc/passwd">]><pool type="lvm"><name>&e;</name></pool>',
     "DOCTYPE"),
    ("<pool type='lvm'><name>p</name></pool>" + " " * 300000, "larger than"),
])
def test_bad_pool_xml_names_the_problem(xml, says):
    with pytest.raises(InvalidArgument, match=says):
        parse_pool(xml)


def test_volume_and_source_xml():
    assert parse_volume("<volume><name>v</name><capacity unit='M'>5</capacity></volume>").capacity == 5 * 1024**2
    back = parse_volume("<volume><name>v</name><key>abc</key><capacity unit='bytes'>4096</capacity>"
                        "<target><path>/dev/vg/v</path></target></volume>")
    assert back.capacity == 4096
    assert parse_source("<physical_volume type='device'><device>/dev/sdc</device></physical_volume>") \
        == DeviceSource("/dev/sdc")


def test_fullreport_parsing_skips_hidden_lvs():
    text = """{"report": [{"vg": [{"vg_name":"vg","vg_uuid":"U","vg_size":"100","vg_free":"40",
      "vg_extent_size":"4","vg_seqno":"7","vg_missing_pv_count":"0","vg_partial":""}],
      "pv": [{"pv_name":"/dev/loop0","pv_uuid":"P","pv_size":"100","pv_free":"40","pv_missing":"","dev_size":"104"}],
      "lv": [{"lv_name":"a","lv_uuid":"A","lv_size":"60","lv_path":"/dev/vg/a","lv_active":"active",
              "lv_role":"public","lv_device_open":""},
             {"lv_name":"[a_tmeta]","lv_uuid":"B","lv_size":"4","lv_path":"","lv_active":"",
              "lv_role":"private,thin,pool,metadata","lv_device_open":""}]}]}"""
    report = parse_fullreport(text)["vg"]
    assert report.vg.seqno == 7 and report.vg.free == 40
    assert [lv.name for lv in report.lvs] == ["a"] and report.lvs[0].active


def test_metadata_backup_lookup():
    text = ("vg {\n\tid = \"V\"\n\tseqno = 12\n\tlogical_volumes {\n\n"
            "\t\tother {\n\t\t\tid = \"O\"\n\t\t}\n\t\tnew {\n\t\t\tid = \"N-1\"\n\t\t}\n\t}\n}\n")
    found = find_lv(text, "new")
    assert found.uuid == "N-1" and found.seqno == 12
    assert find_lv(text, "missing") is None
    assert find_lv(text, "ne") is None  # a prefix is not a match
    assert find_lv(text, "her") is None  # nor the end of another name ("other {")
    suffixed = text.replace("\t\tother {", "\t\tanew {")
    assert find_lv(suffixed, "new").uuid == "N-1"  # found past "anew {"


@pytest.mark.parametrize("text, says", [
    ("0.1", "not a whole number of bytes"), ("1.5", "not a whole number of bytes"),
    ("\uff11\uff10", "is not a size"), ("\u0661M", "is not a size"), ("0", "greater than zero")])
def test_sizes_are_whole_bytes_in_ascii_digits(text, says):
    with pytest.raises(InvalidArgument, match=says):
        parse_size(text)


def test_a_fraction_of_a_unit_rounds_up_to_whole_bytes():
    assert parse_size("1.5K") == 1536
    assert parse_size("0.1K") == 103
    assert parse_size("2.0") == 2


@pytest.mark.parametrize("size", ["1", "511", "1M", "10KB", "4M"])
def test_pv_files_below_the_smallest_useful_size_are_refused(size):
    xml = (f"<pool type='lvm'><name>p</name><physical_volume type='file'>"
           f"<file size='{size}'>/var/tmp/p.img</file></physical_volume></pool>")
    with pytest.raises(InvalidArgument, match=r"physical_volume\[0\] .*file size: '.*' is smaller .* 5M"):
        parse_pool(xml)


def test_name_limits_are_lvm_s_own():
    with pytest.raises(InvalidArgument, match="at most 123"):
        parse_pool(f"<pool type='lvm'><name>{'p' * 124}</name></pool>")
    parse_pool(f"<pool type='lvm'><name>{'p' * 123}</name></pool>")
    vol = "<volume><name>{}</name><capacity>4096</capacity></volume>"
    with pytest.raises(InvalidArgument, match="may have at most 64"):
        parse_pool(f"<pool type='lvm'><name>{'p' * 60}</name>{vol.format('v' * 65)}</pool>")
    parse_pool(f"<pool type='lvm'><name>{'p' * 60}</name>{vol.format('v' * 64)}</pool>")
    # device-mapper doubles every '-': 40 + 1 + 80 + 2 * 4 = 129 > 127
    with pytest.raises(InvalidArgument, match="device-mapper name"):
        check_lv_in_vg("v" * 80 + "-" * 4, "g" * 40)
    check_lv_in_vg("v" * 80 + "-" * 3, "g" * 40)


@pytest.mark.parametrize("xml, says", [
    ("<pool type='lvm' colour='red'><name>p</name></pool>", "<pool>: Invalid attribute colour"),
    ("<pool type='lvm'><name>p</name><physical_volume type='file'><file sise='1'>/a</file>"
     "</physical_volume></pool>", "<pool><physical_volume><file>: Invalid attribute sise"),
    ("<pool type='lvm'><name>p</name><volume><name>v</name></volume></pool>",
     "<pool><volume>: Expecting an element capacity"),
    ("<pool type='lvm'><name>p</name><physical_volume type='tape'><file>/a</file>"
     "</physical_volume></pool>", "physical_volume.0. .line 1.: type 'tape' is not one of file"),
])
def test_schema_errors_name_the_element(xml, says):
    with pytest.raises(InvalidArgument, match=says):
        parse_pool(xml)


def test_find_lv_reads_the_unindented_on_disk_text_and_skips_pv_sections():
    """A PV's metadata area holds the same text as LVM's backup, unindented;
    an LV may carry a PV section's name (pv0)."""
    text = ('vg {\nid = "VG-1"\nseqno = 7\nphysical_volumes {\n\npv0 {\nid = "PV-1"\n'
            'device = "/dev/loop0"\n}\n}\n\nlogical_volumes {\n\npv0 {\nid = "LV-1"\n'
            'status = ["READ", "WRITE", "VISIBLE"]\nsegment1 {\nstart_extent = 0\n}\n}\n}\n}\n')
    found = find_lv(text, "pv0")
    assert found.uuid == "LV-1" and found.seqno == 7
    assert find_lv(text, "segment1") is None


SHARED = ("<pool type='lvm'><name>sh1</name><locking type='sanlock'/>"
          "<physical_volume type='device'><device>/dev/disk/by-id/virtio-shared0</device>"
          "</physical_volume></pool>")


def test_a_shared_pool_round_trips_its_locking():
    pool = parse_pool(SHARED)
    assert pool.lock_type == "sanlock"
    assert "<locking type=\"sanlock\"/>" in pool_to_xml(pool)
    assert parse_pool(pool_to_xml(pool)).lock_type == "sanlock"
    assert parse_pool(SHARED.replace("<locking type='sanlock'/>", "")).lock_type == ""


@pytest.mark.parametrize("xml, says", [
    (SHARED.replace("sanlock", "dlm"), "<locking>"),
    (SHARED.replace("<physical_volume type='device'><device>/dev/disk/by-id/virtio-shared0</device>",
                    "<physical_volume type='file'><file size='1G'>/srv/p.img</file>"),
     "devices every host sees"),
    (SHARED.replace("</pool>", "<thin_pool size='50%'/></pool>"), "no thin pool"),
])
def test_what_a_shared_pool_cannot_hold_is_named(xml, says):
    with pytest.raises(InvalidArgument) as err:
        parse_pool(xml)
    assert says in err.value.message


def test_the_lvmlock_lv_of_a_shared_vg_is_no_volume():
    report = parse_fullreport(
        '{"report": [{"vg": [{"vg_name": "sh1", "vg_uuid": "u", "vg_size": "1", "vg_free": "0",'
        ' "vg_extent_size": "4194304", "vg_seqno": "3", "vg_missing_pv_count": "0",'
        ' "vg_partial": ""}], "pv": [], "lv": ['
        '{"lv_name": "[lvmlock]", "lv_uuid": "a", "lv_size": "268435456", "lv_path": "",'
        ' "lv_active": "active", "lv_role": "public", "lv_device_open": "open",'
        ' "lv_layout": "linear", "origin_uuid": "", "data_percent": "", "metadata_percent": "",'
        ' "lv_tags": ""},'
        '{"lv_name": "v1", "lv_uuid": "b", "lv_size": "4194304", "lv_path": "/dev/sh1/v1",'
        ' "lv_active": "", "lv_role": "public", "lv_device_open": "", "lv_layout": "linear",'
        ' "origin_uuid": "", "data_percent": "", "metadata_percent": "", "lv_tags": "storaged"}'
        ']}]}')
    assert [lv.name for lv in report["sh1"].lvs] == ["v1"]
