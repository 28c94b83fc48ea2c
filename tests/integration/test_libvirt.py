"""libvirt users move over: a logical pool imported through the bus and storagectl,
its VG and volumes adopted as they are; domains resolved and checked with libvirt's
own schema (virt-xml-validate)."""
import glob
import os
import subprocess
import sys

from tests.harness import MANAGER, MGR, POOL, VOL, MiB, expect_error
from tests.lvmenv import lvm, lvm_state

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(REPO, "tests", "data", "libvirt")


def libvirt_vg(world, vg, *lvs):
    """A VG made the way libvirt's logical backend makes one: plain LVM on a disk."""
    img = world.path(f"{vg}.img")
    with open(img, "wb") as f:
        f.truncate(32 * MiB)
    dev = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True,
                         check=True).stdout.strip()
    lvm("pvcreate", "--yes", dev)
    lvm("vgcreate", vg, dev)
    for lv in lvs:
        lvm("lvcreate", "--yes", "--name", lv, "--size", "4m", vg)
    return dev


def libvirt_pool_xml(world, name, vg):
    with open(os.path.join(DATA, "pool-logical.xml")) as f:
        xml = f.read().replace("VG_NAME", vg).replace("<name>fast</name>", f"<name>{name}</name>")
    path = world.path(f"libvirt-{name}.xml")
    with open(path, "w") as f:
        f.write(xml)
    return path, xml


def storagectl(world, *args, input=None):
    # No --bus: the address comes from STORAGED_BUS.
    return subprocess.run([sys.executable, "-m", "storaged.cli", *args], input=input,
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**os.environ, "STORAGED_BUS": world.address})


async def test_import_adopts_the_vg_as_it_is_with_libvirt_autostart(world, client):
    libvirt_dir = world.path("libvirt")
    os.makedirs(os.path.join(libvirt_dir, "storage", "autostart"))
    os.symlink("../fast.xml", os.path.join(libvirt_dir, "storage", "autostart", "fast.xml"))
    os.makedirs(world.path("etc"))
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write(f"[daemon]\nlibvirt_config_dir = {libvirt_dir}\n")
    world.daemon()
    vg = f"{world.prefix}fast"
    libvirt_vg(world, vg, "web01-root", "db02-data")
    path, _ = libvirt_pool_xml(world, "fast", vg)
    before = lvm_state()

    r = storagectl(world, "pool-import-libvirt", path)
    assert r.returncode == 0 and r.stdout == "Pool fast imported from libvirt\n", r.stderr
    assert lvm_state() == before  # nothing on disk rewritten
    pool = await client.call(MANAGER, MGR, "LookupPool", "s", ["fast"])
    assert await client.get(pool, POOL, "UUID") == "2b8e6c1a-5d4f-4e3a-9b2c-7d8e9f0a1b2c"  # libvirt's
    assert await client.get(pool, POOL, "State") == "running"
    assert await client.get(pool, POOL, "Autostart") is True  # libvirt's autostart link
    assert await client.get(pool, POOL, "VolumeGroup") == vg
    names = {await client.get(v, VOL, "Name") for v in await client.get(pool, POOL, "Volumes")}
    assert names == {"web01-root", "db02-data"}
    xml = await client.call(pool, POOL, "GetXML")
    assert "physical_volume" not in xml and f"<volume_group>{vg}</volume_group>" in xml

    # libvirt's volume XML works; a qcow2 volume does not, and changes nothing.
    vol = await client.call(pool, POOL, "CreateVolume", "s", [
        "<volume><name>web01-data</name><capacity unit='MiB'>8</capacity>"
        "<allocation unit='MiB'>8</allocation><target><format type='raw'/></target></volume>"])
    assert await client.get(vol, VOL, "Capacity") == 8 * MiB
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(pool, POOL, "CreateVolume", "s", [
        "<volume><name>q</name><capacity unit='MiB'>8</capacity><target><format type='qcow2'/></target></volume>"]))
    assert "qcow2" in msg and lvm_state() == before

    # Delete never destroys an adopted VG; Undefine forgets the pool only.
    await client.call(pool, POOL, "Stop")
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(pool, POOL, "Delete"))
    assert "Undefine" in msg and lvm_state() == before
    await client.call(pool, POOL, "Undefine")
    assert await client.get(MANAGER, MGR, "Pools") == [] and lvm_state() == before


async def test_import_refusals_name_what_is_wrong_and_change_nothing(world, client):
    world.daemon()  # the default libvirt_config_dir: no autostart link for these names
    vg = f"{world.prefix}slow"
    libvirt_vg(world, vg, "a")
    before = lvm_state()
    msg = await expect_error("NotSupported", client.call(MANAGER, MGR, "ImportLibvirtPool", "s", [
        "<pool type='dir'><name>images</name><target><path>/var/lib/libvirt/images</path></target></pool>"]))
    assert "'dir'" in msg
    _, missing = libvirt_pool_xml(world, "nosuch", f"{world.prefix}nosuch")
    msg = await expect_error("NotFound", client.call(MANAGER, MGR, "ImportLibvirtPool", "s", [missing]))
    assert f"{world.prefix}nosuch" in msg
    await expect_error("InvalidArgument", client.call(MANAGER, MGR, "ImportLibvirtPool", "s", ["<pool"]))
    assert await client.get(MANAGER, MGR, "Pools") == [] and lvm_state() == before

    _, xml = libvirt_pool_xml(world, "slow", vg)
    pool = await client.call(MANAGER, MGR, "ImportLibvirtPool", "s", [xml])
    assert await client.get(pool, POOL, "Autostart") is False  # no libvirt autostart link
    await expect_error("AlreadyExists", client.call(MANAGER, MGR, "ImportLibvirtPool", "s", [xml]))


async def test_domains_resolve_to_libvirt_valid_xml(world, client):
    world.daemon()
    for pool, vols in (("fast", ["web01-root", "db02-data"]), ("guests", ["web01-data", "db02-os", "db02-wal"])):
        xml = world.pool_xml(pool, (f"{pool}.img", "64M"), vg=f"{world.prefix}{pool}")
        path = await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
        for vol in vols:
            await client.call(path, POOL, "AllocateVolume", "sta{sv}", [vol, 4 * MiB, {}])
    domains = sorted(glob.glob(os.path.join(DATA, "domain-*.xml")))
    assert len(domains) >= 3
    for domain in domains:
        with open(domain) as f:
            original = f.read()
        r = storagectl(world, "domain-resolve", "-", input=original)
        assert r.returncode == 0, r.stderr
        out = world.path("resolved-" + os.path.basename(domain))
        with open(out, "w") as f:
            f.write(r.stdout)
        v = subprocess.run(["virt-xml-validate", out, "domain"], capture_output=True, text=True)
        assert v.returncode == 0, (domain, v.stdout, v.stderr)
        assert "volume=" not in r.stdout
        assert r.stdout.rstrip("\n") == (await client.call(MANAGER, MGR, "ResolveDomain", "s",
                                                           [original])).rstrip("\n")
    web = storagectl(world, "domain-resolve", os.path.join(DATA, "domain-web.xml")).stdout
    assert f"<source dev='/dev/{world.prefix}fast/web01-root'/>" in web
    assert f'<source dev="/dev/{world.prefix}guests/web01-data"/>' in web
    assert "<!-- system disk, on the fast pool -->" in web
    r = storagectl(world, "domain-resolve", "-", input="<domain><devices><disk type='volume'>"
                   "<source pool='fast' volume='nope'/><target dev='vdz'/></disk></devices></domain>")
    assert r.returncode != 0 and "'vdz'" in r.stderr and "nope" in r.stderr
