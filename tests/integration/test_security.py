"""Least privilege and hostile input, through the real bus.

Two layers decide who may change storage, and each is tested on its own:
the bus policy (dbus/org.storaged.Storaged1.conf) with the project's policy,
and the daemon's own check with a permissive bus policy that lets everyone
send everything, so that only the daemon stands in the way. The test bus has
no polkit, so a non-root caller must get NotAuthorized from the daemon."""
import asyncio
import os

import pytest
from dbus_fast import DBusError
from dbus_fast.service import ServiceInterface, method
from dbus_fast.signature import SignatureTree

from storaged.bus.calls import journal_fields
from storaged.bus.manager import ManagerInterface
from storaged.bus.pool import PoolInterface
from storaged.bus.volume import VolumeInterface
from tests.harness import MANAGER, ROOT, busctl, expect_error, MGR, POOL, VOL, MiB
from tests.lvmenv import loops_under, lvm, lvm_state

ERR = "org.storaged.Storaged1.Error."
BUS_NAME = "org.storaged.Storaged1"
NOBODY = 65534

# busctl arguments for one value of each type our methods take.
_DUMMY = {"s": ["x"], "t": ["4194304"], "b": ["true"], "a{sv}": ["0"]}


def mutating_methods():
    """(interface, method, busctl args) for every method that changes something."""
    out = []
    for cls, iface in ((ManagerInterface, MGR), (PoolInterface, POOL), (VolumeInterface, VOL)):
        for name in sorted(dir(cls)):
            fn = getattr(cls, name)
            if getattr(fn, "storaged_action", None):
                sig = getattr(fn, "__DBUS_METHOD").in_signature
                args = [a for t in SignatureTree(sig).types for a in _DUMMY[t.signature]]
                out.append((iface, name, [sig, *args] if sig else []))
    return out


def test_every_mutating_method_is_listed():
    names = {(i, m) for i, m, _ in mutating_methods()}
    assert (MGR, "CreatePool") in names and (POOL, "Delete") in names and (VOL, "Delete") in names
    assert (POOL, "AllocateVolume") in names and (MGR, "DefinePool") in names
    assert not {(i, m) for i, m in names if m in ("GetXML", "LookupPool", "ResolveDisk")}


def test_journal_fields_are_journal_fields():
    fields = journal_fields(1000, "AllocateVolume", ("v", 4096, {}), "org.storaged.Storaged1.manage-volumes")
    assert set(fields) == {"STORAGED_CALLER_UID", "STORAGED_METHOD", "STORAGED_ARGS", "STORAGED_ACTION"}
    assert fields["STORAGED_CALLER_UID"] == 1000 and "4096" in fields["STORAGED_ARGS"]
    assert len(journal_fields(0, "DefinePool", ("x" * 100000,), "a")["STORAGED_ARGS"]) < 5000


async def _pool_with_volume(world, client, tag):
    pool = await client.call(MANAGER, MGR, "CreatePool", "s",
                             [world.pool_xml(f"{world.prefix}{tag}", (f"{tag}.img", "16M"))])
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["keep", 4 * MiB, {}])
    return pool, vol


def _definitions(world):
    d = os.path.join(world.base, "etc", "pools")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def _try_every_mutating_method(world, pool, vol):
    """Each mutating method as nobody; returns (method, returncode, stderr)."""
    targets = {MGR: MANAGER, POOL: pool, VOL: vol}
    results = []
    for iface, method, args in mutating_methods():
        r = busctl(world.address, "call", BUS_NAME, targets[iface], iface, method, *args,
                   user="nobody")
        results.append((f"{iface}.{method}", r.returncode, r.stderr))
    return results


def _nobody_can_read(world, pool):
    r = busctl(world.address, "get-property", BUS_NAME, pool, POOL, "State", user="nobody")
    assert r.returncode == 0 and "running" in r.stdout, r.stderr
    r = busctl(world.address, "call", BUS_NAME, ROOT, "org.freedesktop.DBus.ObjectManager",
               "GetManagedObjects", user="nobody")
    assert r.returncode == 0 and pool in r.stdout, r.stderr
    r = busctl(world.address, "call", BUS_NAME, pool, POOL, "GetXML", user="nobody")
    assert r.returncode == 0 and "<pool" in r.stdout, r.stderr


async def test_bus_policy_denies_nobody_every_mutating_method(world, client):
    d = world.daemon()
    pool, vol = await _pool_with_volume(world, client, "pol")
    before, defs = lvm_state(), _definitions(world)
    _nobody_can_read(world, pool)
    for what, rc, err in _try_every_mutating_method(world, pool, vol):
        assert rc != 0 and "Access denied" in err, (what, err)
    assert lvm_state() == before and _definitions(world) == defs
    # The bus stopped them: not one reached the daemon.
    assert f"uid {NOBODY} denied" not in d.log()


async def test_daemon_denies_nobody_every_mutating_method_under_a_permissive_policy(
        permissive_world, pclient):
    world, client = permissive_world, pclient
    d = world.daemon()
    pool, vol = await _pool_with_volume(world, client, "dmn")
    before, defs = lvm_state(), _definitions(world)
    _nobody_can_read(world, pool)
    results = _try_every_mutating_method(world, pool, vol)
    for what, rc, err in results:
        # The bus let it through; the daemon said no (no polkit on this bus).
        assert rc != 0 and "Access denied" not in err, (what, err)
        assert "needs root or a polkit authorization" in err, (what, err)
    assert lvm_state() == before and _definitions(world) == defs
    log = d.log()
    assert f"uid {NOBODY} denied AllocateVolume" in log or f"uid {NOBODY} denied" in log
    # Root still may, on the same bus.
    assert await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["more", 4 * MiB, {}])


HOSTILE_XML = {
    "xxe-file": '<?xml version="1.0"?><!DOCTYPE pool [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                "<pool type='lvm'><name>&x;</name></pool>",
    "xxe-parameter": '<!DOCTYPE pool [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'
                     "<pool type='lvm'><name>p</name></pool>",
    "external-dtd": '<!DOCTYPE pool SYSTEM "http://192.0.2.1/x.dtd"><pool type="lvm"><name>p</name></pool>',
    "billion-laughs": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                      + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                                for i in range(1, 10))
                      + ']><pool type="lvm"><name>&lol9;</name></pool>',
    "lowercase-doctype": '<!doctype pool><pool type="lvm"><name>p</name></pool>',
    "xinclude": '<pool type="lvm" xmlns:xi="http://www.w3.org/2001/XInclude"><name>p</name>'
                '<xi:include href="/etc/passwd" parse="text"/></pool>',
    "too-large": "<pool type='lvm'><name>p</name>" + "<!--" + "x" * 300000 + "--></pool>",
    "deep": "<pool type='lvm'><name>p</name>" + "<a>" * 5000 + "</a>" * 5000 + "</pool>",
    "not-utf8-surrogate": "<pool type='lvm'><name>p\udcff</name></pool>",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_XML))
async def test_hostile_xml_is_invalid_argument_and_changes_nothing(world, client, kind):
    world.daemon()
    pool, _ = await _pool_with_volume(world, client, "x")
    before, defs = lvm_state(), _definitions(world)
    xml = HOSTILE_XML[kind]
    for target, iface, method in ((MANAGER, MGR, "DefinePool"), (MANAGER, MGR, "CreatePool"),
                                  (pool, POOL, "CreateVolume"), (MANAGER, MGR, "ResolveDisk")):
        try:
            await client.call(target, iface, method, "s", [xml])
        except DBusError as exc:
            # A lone surrogate cannot even be sent: the bus library refuses it.
            assert exc.type == ERR + "InvalidArgument", (method, exc.type, exc.text)
            assert "root:" not in exc.text
        except (UnicodeEncodeError, ValueError):
            assert kind == "not-utf8-surrogate"
        else:
            raise AssertionError(f"{method} accepted {kind}")
    assert lvm_state() == before and _definitions(world) == defs
    assert await client.call(MANAGER, MGR, "LookupPool", "s", [f"{world.prefix}x"]) == pool


async def _refused(client, world, xml, kind):
    with pytest.raises(DBusError) as info:
        await client.call(MANAGER, MGR, "CreatePool", "s", [xml])
    assert info.value.type == ERR + kind, (info.value.type, info.value.text)
    return info.value.text


def _file_pool(world, name, path, size="16M"):
    return (f"<pool type='lvm'><name>{world.prefix}{name}</name><physical_volume type='file'>"
            f"<file size='{size}'>{path}</file></physical_volume></pool>")


async def test_file_pv_never_through_a_symlink(world, client):
    world.daemon()
    real = world.path("real")
    os.mkdir(real)
    os.symlink(real, world.path("link"))
    before = lvm_state()
    msg = await _refused(client, world, _file_pool(world, "s1", world.path("link/p.img")),
                         "InvalidArgument")
    assert "symlink" in msg
    assert not os.path.lexists(os.path.join(real, "p.img"))
    # A dangling symlink as the file itself: its target is never created.
    os.symlink(world.path("target.img"), world.path("dangling.img"))
    await _refused(client, world, _file_pool(world, "s2", world.path("dangling.img")), "InvalidArgument")
    assert not os.path.lexists(world.path("target.img"))
    # A symlink to a file: never followed, the file is left alone.
    with open(world.path("victim.img"), "wb") as f:
        f.write(b"precious")
    os.symlink(world.path("victim.img"), world.path("tovictim.img"))
    await _refused(client, world, _file_pool(world, "s3", world.path("tovictim.img")), "InvalidArgument")
    with open(world.path("victim.img"), "rb") as f:
        assert f.read() == b"precious"
    # Not normalised, relative: refused before anything is looked at.
    await _refused(client, world, _file_pool(world, "s4", world.path("real/../x.img")), "InvalidArgument")
    await _refused(client, world, _file_pool(world, "s5", "x.img"), "InvalidArgument")
    assert lvm_state() == before
    assert loops_under(world.base) == []
    assert not os.path.exists(world.path("x.img"))
    # A directory that does not exist yet is made, one component at a time.
    await client.call(MANAGER, MGR, "CreatePool", "s",
                      [_file_pool(world, "s6", world.path("new/dir/p.img"))])
    assert os.path.isfile(world.path("new/dir/p.img"))


@pytest.mark.parametrize("size", ["0", "0G", "-1", "1.5.5G", "9999999999999999999999T", "12Q",
                                  "1e9", " ", "0x10"])
async def test_bad_file_sizes_are_refused(world, client, size):
    world.daemon()
    before = lvm_state()
    msg = await _refused(client, world, _file_pool(world, "z", world.path("z.img"), size),
                         "InvalidArgument")
    assert "size" in msg
    assert lvm_state() == before and not os.path.lexists(world.path("z.img"))


async def test_device_pvs_block_devices_only_and_never_another_vgs(world, client):
    world.daemon()
    before = lvm_state()

    def dev_pool(name, dev):
        return (f"<pool type='lvm'><name>{world.prefix}{name}</name><physical_volume type='device'>"
                f"<device>{dev}</device></physical_volume></pool>")

    msg = await _refused(client, world, dev_pool("d1", "/dev/null"), "InvalidArgument")
    assert "not a block device" in msg
    await _refused(client, world, dev_pool("d2", "/dev/storaged-does-not-exist"), "InvalidArgument")
    await _refused(client, world, dev_pool("d3", "/etc/passwd"), "InvalidArgument")
    await _refused(client, world, dev_pool("d4", "/dev/../etc/passwd"), "InvalidArgument")
    assert lvm_state() == before
    # A loop device that already is a PV of another VG (made with plain LVM).
    other = await client.call(MANAGER, MGR, "CreatePool", "s",
                              [world.pool_xml(f"{world.prefix}other", ("other.img", "16M"))])
    (loopdev,) = loops_under(world.base)
    before = lvm_state()
    await _refused(client, world, dev_pool("d5", loopdev), "InvalidArgument")
    assert lvm_state() == before
    assert await client.call(other, POOL, "AllocateVolume", "sta{sv}", ["still", 4 * MiB, {}])
    assert lvm("vgs", f"{world.prefix}other", check=False).returncode == 0


class FakePolkit(ServiceInterface):
    """Stands in for polkitd on the test bus: grants the actions it is given,
    and remembers what it was asked."""

    def __init__(self, grants):
        super().__init__("org.freedesktop.PolicyKit1.Authority")
        self.grants = set(grants)
        self.asked = []

    @method()
    def CheckAuthorization(self, subject: "(sa{sv})", action_id: "s", details: "a{ss}",
                           flags: "u", cancellation_id: "s") -> "(bba{ss})":
        self.asked.append((subject[0], subject[1]["name"].value, action_id, flags))
        return [action_id in self.grants, False, {}]


async def test_daemon_asks_polkit_for_the_callers_bus_name(permissive_world, pclient):
    world, client = permissive_world, pclient
    world.daemon()
    pool, vol = await _pool_with_volume(world, client, "pk")
    fake = FakePolkit({"org.storaged.Storaged1.manage-volumes"})
    client.bus.export("/org/freedesktop/PolicyKit1/Authority", fake)
    await client.bus.request_name("org.freedesktop.PolicyKit1")

    def as_nobody(*args):
        # In a thread: the stand-in polkit answers from this test's event loop.
        return asyncio.to_thread(busctl, world.address, "call", BUS_NAME, *args, user="nobody")

    r = await as_nobody(pool, POOL, "AllocateVolume", "sta{sv}", "byuser", str(4 * MiB), "0")
    assert r.returncode == 0 and f"{pool}/volumes/" in r.stdout, r.stderr
    before = lvm_state()
    r = await as_nobody(pool, POOL, "Delete")
    assert r.returncode != 0 and "not authorized for org.storaged.Storaged1.manage-pools" in r.stderr, r.stderr
    r = await as_nobody(MANAGER, MGR, "DefinePool", "s", "<pool type='lvm'><name>z</name></pool>")
    assert r.returncode != 0 and "not authorized" in r.stderr, r.stderr
    assert lvm_state() == before
    kinds = {(a[0], a[2]) for a in fake.asked}
    assert kinds == {("system-bus-name", "org.storaged.Storaged1.manage-volumes"),
                     ("system-bus-name", "org.storaged.Storaged1.manage-pools")}
    assert all(a[1].startswith(":") for a in fake.asked)  # a unique bus name
    # Root is never asked about: polkit saw only nobody's three calls.
    await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["byroot", 4 * MiB, {}])
    assert len(fake.asked) == 3
    # busctl allows interactive authorization unless told not to; the flag follows it.
    assert all(a[3] == 1 for a in fake.asked)
    r = await as_nobody("--allow-interactive-authorization=no", pool, POOL, "Delete")
    assert "did not allow interactive authentication" in r.stderr and fake.asked[-1][3] == 0
    # Revoked: the next call is refused at once (nothing is cached).
    fake.grants.clear()
    r = await as_nobody(pool, POOL, "AllocateVolume", "sta{sv}", "again", str(4 * MiB), "0")
    assert r.returncode != 0 and "not authorized" in r.stderr, r.stderr


async def test_non_ascii_in_an_error_reply_keeps_the_daemon_on_the_bus(world, client):
    """A caller's non-ASCII name echoed in an error once knocked the daemon off the bus
    with Debian's dbus-fast 1.84 (string lengths in characters): the reply must be right."""
    d = world.daemon()
    for name in ("café", "\U0001F600"):
        msg = await expect_error("NotFound", client.call(MANAGER, MGR, "LookupPool", "s", [name]))
        assert name in msg
    assert d.proc.poll() is None
    assert await client.get(MANAGER, MGR, "Pools") == []


class SilentPolkit(ServiceInterface):
    """A polkit that takes every question and never answers it."""

    def __init__(self):
        super().__init__("org.freedesktop.PolicyKit1.Authority")
        self.asked = 0

    @method()
    async def CheckAuthorization(self, subject: "(sa{sv})", action_id: "s", details: "a{ss}",
                                 flags: "u", cancellation_id: "s") -> "(bba{ss})":
        self.asked += 1
        await asyncio.sleep(3600)
        return [True, False, {}]

    @method()
    def CancelCheckAuthorization(self, cancellation_id: "s"):
        pass


async def test_a_polkit_that_never_answers_is_a_no_after_the_timeout(permissive_world, pclient):
    world, client = permissive_world, pclient
    os.makedirs(world.path("etc"), exist_ok=True)
    with open(world.path("etc/storaged.conf"), "w") as f:
        f.write("[daemon]\npolkit_timeout = 3\n")
    world.daemon()
    pool, _ = await _pool_with_volume(world, client, "pt")
    silent = SilentPolkit()
    client.bus.export("/org/freedesktop/PolicyKit1/Authority", silent)
    await client.bus.request_name("org.freedesktop.PolicyKit1")
    before = lvm_state()
    t0 = asyncio.get_running_loop().time()
    asking = asyncio.create_task(asyncio.to_thread(
        busctl, world.address, "call", "--allow-interactive-authorization=no", BUS_NAME,
        pool, POOL, "AllocateVolume", "sta{sv}", "byuser", str(4 * MiB), "0", user="nobody"))
    # While polkit sits on the question, the bus is served: root's calls and reads go through.
    await asyncio.sleep(0.5)
    assert silent.asked == 1 and not asking.done()
    vol = await client.call(pool, POOL, "AllocateVolume", "sta{sv}", ["byroot", 4 * MiB, {}])
    assert await client.get(vol, VOL, "Name") == "byroot"
    assert not asking.done()
    r = await asking
    waited = asyncio.get_running_loop().time() - t0
    assert r.returncode != 0 and "NotAuthorized" not in r.stdout, r
    assert "polkit could not be asked" in r.stderr, r.stderr
    assert 2.5 < waited < 15, waited
    after = lvm_state()
    assert "byuser" not in after and "byuser" not in before
