"""Property-based fuzzing of every method's arguments and of the XML, shared by
the CI tests (tests/integration/test_fuzz.py, a few dozen cases per entry
point) and the long run (bench/fuzz.py, thousands).

The property, for every case: the call either succeeds or answers a named
error (org.storaged.Storaged1.Error.*, or the bus's own InvalidArgs for a
wrong signature), never an internal error; the daemon stays up; and after an
error LVM's state and the files under the test's directory are what they were.

LVM's state is compared cheaply after every case (each PV's metadata area
header changes with every metadata commit LVM makes: storaged/lvm/label.py)
and in full (`lvm fullreport`, tests.lvmenv.lvm_state) every `full_every`
cases and after every success's clean-up.
"""
from __future__ import annotations

import asyncio
import collections
import os
from xml.sax.saxutils import escape, quoteattr

from dbus_fast import Message, MessageType, Variant
from hypothesis import strategies as st

from storaged.client import Error as ClientError, Storaged
from storaged.client.transport import PatientMessageBus
from storaged.lvm.label import fingerprints_now
from tests.harness import BUS_NAME, MANAGER, MGR, POOL, MiB
from tests.lvmenv import loops_under, lvm_state

ERR = "org.storaged.Storaged1.Error."
KEEP = "keep"  # the volume every run starts with; never deallocated by a case

# ---------------------------------------------------------------- strategies

# D-Bus strings are UTF-8 without NUL: anything else is refused by the client
# library or gets the client disconnected by the bus, before storaged sees it.
_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
any_text = st.text(_chars, max_size=200)
HOSTILE_WORDS = ["", ".", "..", "-x", "--help", "snapshot1", "pvmove0", "a_mlog", "x_rimage_0",
                 "lvm", "mapper", "a/b", "../../etc", "$(reboot)", "`id`", "x;rm -rf /", "a b",
                 "a" * 127, "a" * 128, "é", "\u202e", "x\n", "*", "~root", KEEP]
names = st.one_of(st.sampled_from(HOSTILE_WORDS), any_text,
                  st.from_regex(r"[A-Za-z0-9+_.-]{1,130}", fullmatch=True))
sizes = st.one_of(st.sampled_from([0, 1, 511, 512, 4096, MiB, 4 * MiB, 64 * MiB, 2**40,
                                   2**63 - 1, 2**63, 2**64 - 1]),
                  st.integers(0, 2**64 - 1))
size_texts = st.one_of(
    st.sampled_from(["0", "1", "-1", "4M", "16M", "1.5M", "0G", "10G", "1T", "16E", "12Q",
                     "1e9", "0x10", " 8M ", "8 M", "9" * 30, "8MiB", "8MB", "8mb", "NaN", ""]),
    st.from_regex(r"-?\d{1,22}(\.\d{0,4})?\s?[A-Za-z]{0,4}", fullmatch=True), any_text)
units = st.one_of(st.none(), st.sampled_from(["bytes", "B", "K", "KiB", "M", "MB", "G", "GiB",
                                              "T", "TB", "P", "E", "Q", ""]), any_text)
variants = st.one_of(st.builds(lambda s: Variant("s", s), any_text),
                     st.builds(lambda i: Variant("i", i), st.integers(-2**31, 2**31 - 1)),
                     st.builds(lambda b: Variant("b", b), st.booleans()))
options = st.one_of(st.just({}), st.dictionaries(any_text, variants, max_size=3))


def _text(value: str, raw: bool) -> str:
    return value if raw else escape(value)


def _attr(name: str, value: str | None) -> str:
    return "" if value is None else f" {name}={quoteattr(value)}"


@st.composite
def volume_xml(draw) -> str:
    raw = draw(st.booleans()) and draw(st.booleans())  # a quarter unescaped
    unit = draw(units)
    return (f"<volume><name>{_text(draw(names), raw)}</name>"
            f"<capacity{_attr('unit', unit)}>{_text(draw(size_texts), raw)}</capacity></volume>")


def physical_volume(paths, devices):
    hosts = st.one_of(st.sampled_from(["192.0.2.10", "::1", "filer.example", "-oProxy", "a..b",
                                       "x" * 300, "host name", "[::1]"]), any_text)
    iqns = st.one_of(st.sampled_from(["iqn.2007-01.org.example:store", "iqn.2007-13.x:y",
                                      "iqn.2007-01.org.example:a;b", "eui.0123456789abcdef"]), any_text)
    exports = st.one_of(st.sampled_from(["/exports/pools", "/", "exports", "/a/../b", "//x"]), any_text)
    opt_size = st.one_of(st.none(), size_texts)
    file_pv = st.builds(lambda p, s: f"<physical_volume type='file'><file{_attr('size', s)}>"
                                     f"{escape(p)}</file></physical_volume>", paths, opt_size)
    device_pv = st.builds(lambda d: f"<physical_volume type='device'><device>{escape(d)}</device>"
                                    f"</physical_volume>", devices)
    iscsi_pv = st.builds(lambda h, port, t, lun: f"<physical_volume type='iscsi'><host{_attr('port', port)}>"
                                                 f"{escape(h)}</host><target>{escape(t)}</target>"
                                                 f"<lun>{escape(lun)}</lun></physical_volume>",
                         hosts, st.one_of(st.none(), st.sampled_from(["0", "3260", "65536", "-1", "x"])),
                         iqns, st.sampled_from(["0", "1", "16384", "-1", "x", ""]))
    nfs_pv = st.builds(lambda s, e, f, z: f"<physical_volume type='nfs'><server>{escape(s)}</server>"
                                          f"<export>{escape(e)}</export><file{_attr('size', z)}>"
                                          f"{escape(f)}</file></physical_volume>",
                       hosts, exports, st.one_of(st.sampled_from(["pool.img", "a/b", "..", "-x"]), any_text),
                       opt_size)
    return st.one_of(file_pv, device_pv, iscsi_pv, nfs_pv)


HOSTILE_DOCS = [
    '<!DOCTYPE pool [<!ENTITY x SYSTEM "file:///etc/passwd">]><pool type="lvm"><name>&x;</name></pool>',
    '<!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><pool type="lvm"><name>&c;</name></pool>',
    '<!DOCTYPE pool SYSTEM "http://192.0.2.1/x.dtd"><pool type="lvm"><name>p</name></pool>',
    '<pool xmlns:xi="http://www.w3.org/2001/XInclude" type="lvm"><name>p</name>'
    '<xi:include href="/etc/passwd" parse="text"/></pool>',
    "<pool type='lvm'><name>p</name>" + "<x>" * 3000 + "</x>" * 3000 + "</pool>",
    "<pool type='lvm'><name>" + "p" * 300000 + "</name></pool>",
    "<pool type='lvm'><name>p</name></pool><pool/>", "<pool", "", " ", "<?xml version='1.0'?>",
]


good_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
good_volume = st.builds(lambda n, c: f"<volume><name>{n}</name><capacity unit='M'>{c}</capacity></volume>",
                        good_names, st.sampled_from(["1", "4", "1000"]))


@st.composite
def pool_xml(draw, paths, devices, good_paths=None, prefix="fz") -> str:
    kind = draw(st.sampled_from(["structured"] * 5 + ["valid"] * 3 + ["hostile", "raw", "truncated"]))
    if kind == "valid":
        # Mostly right, so that the deeper code runs: build, LVM, volumes.
        pv_paths = draw(st.lists(paths if good_paths is None else good_paths, max_size=2, unique=True))
        pvs = "".join(f"<physical_volume type='file'><file size={quoteattr(draw(st.sampled_from(['16M', '32M', '4M', '1T'])))}>"
                      f"{escape(p)}</file></physical_volume>" for p in pv_paths)
        vols = "".join(draw(st.lists(good_volume, max_size=2)))
        return f"<pool type='lvm'><name>{prefix}{draw(good_names)}</name>{pvs}{vols}</pool>"
    if kind == "hostile":
        return draw(st.sampled_from(HOSTILE_DOCS))
    if kind == "raw":
        return draw(any_text)
    vg = draw(st.one_of(st.none(), names))
    pvs = draw(st.lists(physical_volume(paths, devices), max_size=3))
    vols = draw(st.lists(volume_xml(), max_size=2))
    extra = draw(st.sampled_from(["", "<uuid>not-a-uuid</uuid>", "<unknown/>", "<name>again</name>"]))
    doc = (f"<pool type={quoteattr(draw(st.sampled_from(['lvm', 'lvm', 'dir', ''])))}>"
           f"<name>{escape(draw(names))}</name>"
           f"{'' if vg is None else '<volume_group>' + escape(vg) + '</volume_group>'}"
           f"{''.join(pvs)}{''.join(vols)}{extra}</pool>")
    if kind == "truncated":
        return doc[:draw(st.integers(0, len(doc)))]
    return doc


disk_xml = st.one_of(
    st.builds(lambda v, p, t: f"<disk type={quoteattr(t)}><source volume={quoteattr(v)}"
                              f"{_attr('pool', p)}/><target dev='hda'/></disk>",
              names, st.one_of(st.none(), names), st.sampled_from(["volume", "file", "block", ""])),
    st.sampled_from(HOSTILE_DOCS), any_text)


# ---------------------------------------------------------------- the runner

class Outcome(str):
    pass


class Fuzzer:
    """One daemon, one pool with one volume; runs cases and checks the property."""

    def __init__(self, world, daemon, full_every: int = 1):
        self.world = world
        self.daemon = daemon
        self.full_every = full_every
        self.loop = asyncio.new_event_loop()

        async def connect():
            return await PatientMessageBus(bus_address=world.address).connect()
        self.bus = self.loop.run_until_complete(connect())
        self.prefix = world.prefix
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.restarts = 0
        self.problems: list[str] = []
        self.pool_name = f"{self.prefix}fz"
        self.pool = self.call_ok(MANAGER, MGR, "CreatePool", "s",
                                 [world.pool_xml(self.pool_name, ("fz.img", "32M"))])
        self.call_ok(self.pool, POOL, "AllocateVolume", "sta{sv}", [KEEP, 4 * MiB, {}])
        os.makedirs(world.path("real"), exist_ok=True)
        if not os.path.lexists(world.path("link")):
            os.symlink(world.path("real"), world.path("link"))
        self.since_full = 0
        self._baseline()

    # Paths a CreatePool case may use: under the test's directory, or hostile.
    def create_paths(self):
        b = self.world.base
        return st.one_of(st.sampled_from([f"{b}/fz.img", f"{b}/link/x.img", f"{b}/real/../y.img",
                                          "x.img", "/", f"{b}/", f"{b}/real", "/dev/null"]),
                         st.from_regex(r"[a-z0-9]{1,8}\.img", fullmatch=True).map(lambda n: f"{b}/cp/{n}"))

    def good_paths(self):
        return st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True).map(
            lambda n: f"{self.world.base}/cp/{n}.img")

    def define_paths(self):
        return st.one_of(self.create_paths(), any_text,
                         st.sampled_from(["/etc/passwd", "/etc/shadow", "/proc/self/mem", "/dev/sda"]))

    def devices(self):
        return st.one_of(st.sampled_from(["/dev/null", "/dev/zero", "/dev/storaged-none", "/dev/../etc/passwd",
                                          "/etc/passwd", "dev/loop0", "/dev/"] + loops_under(self.world.base)),
                         any_text)

    def strategies(self) -> dict:
        return {
            "DefinePool": st.tuples(pool_xml(self.define_paths(), self.devices(),
                                             self.good_paths(), self.prefix)),
            "CreatePool": st.tuples(pool_xml(self.create_paths(), self.devices(),
                                             self.good_paths(), self.prefix)),
            "CreateVolume": st.tuples(volume_xml() | good_volume | st.sampled_from(HOSTILE_DOCS) | any_text),
            "AllocateVolume": st.tuples(names | good_names, sizes | st.sampled_from([MiB, 4 * MiB]), options),
            "DeallocateVolume": st.tuples(names.filter(lambda n: n != KEEP)),
            "LookupPool": st.tuples(names | st.just(self.pool_name)),
            "LookupVolume": st.tuples(names | st.just(self.pool_name), names),
            "ResolveDisk": st.tuples(disk_xml),
            "WrongSignature": st.tuples(st.sampled_from([
                (MANAGER, MGR, "DefinePool"), (MANAGER, MGR, "CreatePool"), (MANAGER, MGR, "LookupVolume"),
                ("POOL", POOL, "AllocateVolume"), ("POOL", POOL, "SetAutostart"),
                ("POOL", POOL, "DeallocateVolume")]),
                st.sampled_from([("i", [1]), ("s", ["x"]), ("ss", ["a", "b"]), ("", []), ("st", ["v", 1]),
                                 ("b", [True]), ("sta{sv}i", ["v", 1, {}, 3])])),
        }

    SIGNATURES = {"DefinePool": (MGR, "s"), "CreatePool": (MGR, "s"), "CreateVolume": (POOL, "s"),
                  "AllocateVolume": (POOL, "sta{sv}"), "DeallocateVolume": (POOL, "s"),
                  "LookupPool": (MGR, "s"), "LookupVolume": (MGR, "ss"), "ResolveDisk": (MGR, "s")}

    # -------------------------------------------------------------- calls

    def _send(self, path, iface, member, signature, body):
        msg = Message(destination=BUS_NAME, path=path, interface=iface, member=member,
                      signature=signature, body=list(body))
        return self.loop.run_until_complete(asyncio.wait_for(self.bus.call(msg), 120))

    def call_ok(self, path, iface, member, signature="", body=()):
        """A call that must succeed (the set-up's and the clean-up's), through storaged.client."""
        call = Storaged(self.bus).call(path, iface, member, signature, body)
        try:
            return self.loop.run_until_complete(asyncio.wait_for(call, 120))
        except ClientError as exc:
            raise AssertionError(f"{member}: {exc.name}: {exc.message}") from None

    def run(self, entry: str, args: tuple) -> str:
        """One case; returns its outcome ('ok', 'named:Kind' or 'bus:Name') after
        checking the property and cleaning up after a success."""
        if entry == "WrongSignature":
            (path, iface, member), (sig, body) = args
            path = self.pool if path == "POOL" else path
            iface_sig = {"DefinePool": "s", "CreatePool": "s", "LookupVolume": "ss",
                         "AllocateVolume": "sta{sv}", "SetAutostart": "b", "DeallocateVolume": "s"}[member]
            if sig == iface_sig:
                sig, body = "x", [7]
            reply = self._send(path, iface, member, sig, body)
        else:
            iface, sig = self.SIGNATURES[entry]
            path = self.pool if iface == POOL else MANAGER
            reply = self._send(path, iface, entry, sig, args)
        return self.judge(entry, args, reply)

    def judge(self, entry: str, args: tuple, reply) -> str:
        """Check the property for one case's reply (see run())."""
        outcome = self._classify(entry, reply)
        self.counts[entry][outcome] += 1
        if self.daemon.proc.poll() is not None:
            self.problems.append(f"{entry}{args!r:.300}: the daemon exited with {self.daemon.proc.returncode}")
            self.restarts += 1
            self.daemon.start()
            self._baseline()
            return outcome
        if outcome == "ok":
            self._clean_up(entry, args, reply.body[0] if reply.body else None)
            self._baseline()
        else:
            self._check_unchanged(entry, args, outcome)
        return outcome

    def _classify(self, entry, reply) -> str:
        if reply.message_type != MessageType.ERROR:
            return "ok"
        text = reply.body[0] if reply.body else ""
        if reply.error_name.startswith(ERR):
            kind = reply.error_name[len(ERR):]
            if "internal error" in text or "Traceback" in text:
                self.problems.append(f"{entry}: internal error: {text}")
            return f"named:{kind}"
        # dbus-fast answers a known method with another signature UnknownMethod.
        if entry == "WrongSignature" and reply.error_name in (
                "org.freedesktop.DBus.Error.InvalidArgs", "org.freedesktop.DBus.Error.UnknownMethod"):
            return f"bus:{reply.error_name.rsplit('.', 1)[1]}"
        self.problems.append(f"{entry}: unnamed error {reply.error_name}: {text}")
        return f"unnamed:{reply.error_name}"

    def _clean_up(self, entry, args, result):
        if entry in ("DefinePool", "CreatePool"):
            for member in ("Stop", "Delete", "Undefine"):
                reply = self._send(result, POOL, member, "", [])
                if reply.message_type == MessageType.ERROR and member != "Delete":
                    self.problems.append(f"clean-up {member} of {result}: {reply.body}")
        elif entry in ("AllocateVolume", "CreateVolume"):
            vol = self.call_ok(result, "org.freedesktop.DBus.Properties", "Get", "ss",
                               ["org.storaged.Storaged1.Volume", "Name"])
            if vol.value != KEEP:
                self.call_ok(self.pool, POOL, "DeallocateVolume", "s", [vol.value])
        elif entry == "DeallocateVolume":
            self.problems.append(f"DeallocateVolume({args[0]!r}) removed a volume no case made")

    # -------------------------------------------------------------- state

    def _files(self):
        out = []
        for root, dirs, files in os.walk(self.world.base):
            dirs[:] = [d for d in dirs if d not in ("bus", "lvm", "run")]
            out += [os.path.join(root, f) for f in files if not f.endswith((".log", ".sock", ".json"))]
        return sorted(out)

    def _fingerprints(self):
        return fingerprints_now(loops_under(self.world.base))

    def _baseline(self):
        self.state = lvm_state()
        self.prints = self._fingerprints()
        self.files = self._files()
        self.since_full = 0

    def _check_unchanged(self, entry, args, outcome):
        self.since_full += 1
        what = f"{entry}{args!r:.300} -> {outcome}"
        if self._fingerprints() != self.prints:
            self.problems.append(f"{what}: LVM metadata changed")
        elif self._files() != self.files:
            self.problems.append(f"{what}: files changed: {sorted(set(self._files()) ^ set(self.files))}")
        elif self.since_full >= self.full_every:
            self.since_full = 0
            if lvm_state() != self.state:
                self.problems.append(f"{what} (or one of the {self.full_every} before): LVM state changed")
        else:
            return
        self._baseline()  # report each change once

    def close(self):
        self.bus.disconnect()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()
