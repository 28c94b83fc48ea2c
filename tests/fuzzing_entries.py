"""The entry points tests/fuzzing.py's Fuzzer does not reach by itself: the
Volume's methods, the Pool's PV, thin pool and autostart methods, the
Manager's libvirt methods and ImportPool, the Job's Cancel and every method without
arguments, with the same property (a success or a named error, the daemon
up, nothing changed by an error) and a clean-up after each success that puts
the pool back as it was (running, one PV, the `keep` volume).

`uncovered()` reads the bus API's introspection file
(dbus/org.storaged.Storaged1.xml): a method added there and fuzzed nowhere
fails the fuzz test and bench/fuzz.py, naming it."""
from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET

from dbus_fast import MessageType, Variant
from hypothesis import strategies as st

from tests.fuzzing import (HOSTILE_DOCS, KEEP, Fuzzer, any_text, disk_xml, names, options, physical_volume,
                           sizes)
from tests.harness import MANAGER, MGR, POOL, VOL, MiB
from tests.lvmenv import lvm

JOB = "org.storaged.Storaged1.Job"
PROPS = "org.freedesktop.DBus.Properties"
# Every method without arguments, on the object it belongs to.
NO_ARGUMENTS = [("pool", POOL, m) for m in ("Build", "Start", "Stop", "Delete", "Undefine",
                                            "Refresh", "GetXML")] + \
               [("volume", VOL, m) for m in ("Delete", "Wipe", "GetXML")] + [("manager", MGR, "Refresh")]
# entry point -> (interface, signature, object)
MORE = {"Resize": (VOL, "ta{sv}", "volume"), "Wipe": (VOL, "", "volume"),
        "AddPhysicalVolume": (POOL, "s", "pool"), "RemovePhysicalVolume": (POOL, "s", "pool"),
        "SetAutostart": (POOL, "b", "pool"),
        "ImportLibvirtPool": (MGR, "s", "manager"), "ResolveDomain": (MGR, "s", "manager"),
        "ImportPool": (MGR, "s", "manager"),
        "CreateThinPool": (POOL, "ta{sv}", "pool"),
        "Activate": (VOL, "a{sv}", "volume"), "Deactivate": (VOL, "", "volume"),
        "Open": (VOL, "sa{sv}", "volume"), "Rename": (VOL, "s", "volume"),
        "Snapshot": (VOL, "sa{sv}", "volume"), "Clone": (VOL, "sa{sv}", "volume"),
        "Revert": (VOL, "", "volume"), "Cancel": (JOB, "", "job")}
ENTRIES = [*MORE, "NoArguments"]
# What the base Fuzzer's own entry points call (tests/fuzzing.py).
BASE = {(MGR, m) for m in ("DefinePool", "CreatePool", "LookupPool", "LookupVolume", "ResolveDisk")} | \
       {(POOL, m) for m in ("CreateVolume", "AllocateVolume", "DeallocateVolume")}
INTROSPECTION = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "dbus", "org.storaged.Storaged1.xml")


def uncovered(introspection: str = INTROSPECTION) -> list[str]:
    """Every method of the introspection file that no entry point calls, as
    "Interface.Method"; empty when the fuzzing covers the whole API."""
    covered = BASE | {(iface, m) for m, (iface, _, _) in MORE.items()} | \
        {(iface, m) for _, iface, m in NO_ARGUMENTS}
    root = ET.parse(introspection).getroot()
    return [f"{i.get('name')}.{m.get('name')}" for i in root.iter("interface") for m in i.iter("method")
            if (i.get("name"), m.get("name")) not in covered]


def _domain(disks: list[str]) -> str:
    return f"<domain type='kvm'><name>g</name><devices>{''.join(disks)}</devices></domain>"


LIBVIRT_POOLS = st.one_of(
    st.builds(lambda n, vg, dev: f"<pool type='logical'><name>{n}</name><source><name>{vg}</name>"
                                 f"<device path='{dev}'/></source><target><path>/dev/{vg}</path></target></pool>",
              names.map(lambda t: t.replace("<", "").replace("&", "")), names.map(lambda t: t.replace("'", "")),
              st.sampled_from(["/dev/null", "/dev/storaged-none", "/etc/passwd", "x"])),
    st.sampled_from(["<pool type='dir'><name>d</name><target><path>/var/lib/x</path></target></pool>",
                     "<pool type='logical'/>", "<pool/>"]))


class FullFuzzer(Fuzzer):
    """Fuzzer plus the entry points listed in ENTRIES."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep = self.call_ok(MANAGER, MGR, "LookupVolume", "ss", [self.pool_name, KEEP])

    def strategies(self) -> dict:
        own = [self.world.path("fz.img"), *self.devices_now()]
        resize_options = st.one_of(st.just({}), st.builds(lambda b: {"force": Variant("b", b)}, st.booleans()),
                                   st.dictionaries(any_text, st.just(Variant("i", 1)), max_size=2))
        return {**super().strategies(),
                "Resize": st.tuples(sizes | st.sampled_from([4 * MiB, 8 * MiB, 2 * MiB]), resize_options),
                "Wipe": st.just(()),
                "AddPhysicalVolume": st.tuples(physical_volume(self.create_paths(), self.devices())
                                               | st.sampled_from(HOSTILE_DOCS) | any_text),
                "RemovePhysicalVolume": st.tuples(names | st.sampled_from(own)),
                "SetAutostart": st.tuples(st.booleans()),
                "ImportLibvirtPool": st.tuples(LIBVIRT_POOLS | st.sampled_from(HOSTILE_DOCS) | any_text),
                # The pool's own VG (imported already: its path, nothing changed),
                # hostile and random names (NotFound, InvalidArgument).
                "ImportPool": st.tuples(st.just(self.pool_name) | names | any_text),
                "ResolveDomain": st.tuples(st.lists(disk_xml, max_size=3).map(_domain)
                                           | st.sampled_from(HOSTILE_DOCS) | any_text),
                "CreateThinPool": st.tuples(sizes | st.sampled_from([4 * MiB, 8 * MiB, 64 * MiB]), options),
                "Activate": st.tuples(options),
                "Deactivate": st.just(()),
                "Open": st.tuples(st.sampled_from(["r", "w", "rw", "", "x", "rwx", "r+"]) | any_text, options),
                "Rename": st.tuples(names),
                "Snapshot": st.tuples(names, options),
                "Clone": st.tuples(names, options),
                "Revert": st.just(()),
                "Cancel": st.just(()),
                "NoArguments": st.tuples(st.sampled_from(NO_ARGUMENTS))}

    def devices_now(self) -> list[str]:
        return [d.value if hasattr(d, "value") else d for d in self._pvs()]

    def _pvs(self) -> list[str]:
        return self.call_ok(self.pool, PROPS, "Get", "ss", [POOL, "PhysicalVolumes"]).value

    def _target(self, kind: str) -> str:
        if kind == "job":
            return self._job()
        return {"pool": self.pool, "volume": self.keep, "manager": MANAGER}[kind]

    def _job(self) -> str:
        """A Job of this pool's to cancel: a PV added and then removed (the
        removal is the Job, cancelled or not by the case; _clean_up waits for
        it and takes the PV out if it is still in)."""
        path = self.world.path("fzjob.img")
        self.call_ok(self.pool, POOL, "AddPhysicalVolume", "s",
                     [f"<physical_volume type='file'><file size='8M'>{path}</file></physical_volume>"])
        return self.call_ok(self.pool, POOL, "RemovePhysicalVolume", "s", [path])

    def run(self, entry: str, args: tuple) -> str:
        if entry == "NoArguments":
            ((kind, iface, member),) = args
            self._pvs_before = self._pvs()
            reply = self._send(self._target(kind), iface, member, "", [])
            return self.judge(entry, (kind, member), reply)
        if entry not in MORE:
            return super().run(entry, args)
        iface, sig, kind = MORE[entry]
        self._pvs_before = self._pvs()
        target = self._target(kind)
        reply = self._send(target, iface, entry, sig, args)
        if kind == "job":
            # The Job's own end, whatever Cancel answered; then the property.
            self._wait_job(entry, args, target)
            extra = set(self._pvs()) - set(self._pvs_before)
            if extra:
                self._wait_job(entry, args, self.call_ok(self.pool, POOL, "RemovePhysicalVolume", "s",
                                                         [extra.pop()]))
            self._baseline()
        return self.judge(entry, args, reply)

    def _clean_up(self, entry, args, result):
        if entry not in ENTRIES:
            return super()._clean_up(entry, args, result)
        member = args[1] if entry == "NoArguments" else entry
        if member in ("Resize", "Wipe", "RemovePhysicalVolume", "Revert"):
            self._wait_job(entry, args, result)
        if member == "ImportLibvirtPool":
            # Not Delete: an imported pool names storage that was there before.
            self._send(result, POOL, "Stop", "", [])
            reply = self._send(result, POOL, "Undefine", "", [])
            if reply.message_type == MessageType.ERROR:
                self.problems.append(f"clean-up Undefine of imported {result}: {reply.body}")
        elif member == "CreateThinPool":
            # No method removes a thin pool: LVM does, as an admin would.
            vg = self.call_ok(self.pool, PROPS, "Get", "ss", [POOL, "VolumeGroup"]).value
            lvm("lvremove", "-y", "-S", "segtype=thin-pool", vg)
            self.call_ok(self.pool, POOL, "Refresh")
        elif member == "Open":
            if isinstance(result, int) and result > 2:
                os.close(result)
        elif member == "Rename":
            name = self.call_ok(self.keep, PROPS, "Get", "ss", [VOL, "Name"]).value
            self.keep = self.call_ok(MANAGER, MGR, "LookupVolume", "ss", [self.pool_name, name])
            if name != KEEP:
                self.call_ok(self.keep, VOL, "Rename", "s", [KEEP])
        elif member == "Deactivate":
            self.call_ok(self.keep, VOL, "Activate", "a{sv}", [{}])
        elif member in ("Snapshot", "Clone"):
            new = result[0] if member == "Clone" else result
            if member == "Clone":
                self._wait_job(entry, args, result[1])
            name = self.call_ok(new, PROPS, "Get", "ss", [VOL, "Name"]).value
            self.call_ok(self.pool, POOL, "DeallocateVolume", "s", [name])
        if member == "AddPhysicalVolume":
            (new,) = set(self._pvs()) - set(self._pvs_before)
            self._wait_job(entry, args, self.call_ok(self.pool, POOL, "RemovePhysicalVolume", "s", [new]))
        elif member == "Stop":
            self.call_ok(self.pool, POOL, "Start")
        elif member == "Delete" and args[0] == "volume":
            self.call_ok(self.pool, POOL, "AllocateVolume", "sta{sv}", [KEEP, 4 * MiB, {}])
            self.keep = self.call_ok(MANAGER, MGR, "LookupVolume", "ss", [self.pool_name, KEEP])
        elif member in ("Delete", "Undefine"):
            self.problems.append(f"{member} of the running pool succeeded")
        if len(self._pvs()) != 1 or not self.keep:
            self.problems.append(f"{entry}{args!r:.200}: the pool has PVs {self._pvs()}")

    def _wait_job(self, entry, args, job):
        deadline = time.monotonic() + 120
        while not self.call_ok(job, PROPS, "Get", "ss", [JOB, "Completed"]).value:
            if time.monotonic() > deadline:
                self.problems.append(f"{entry}{args!r:.200}: job {job} never completed")
                return
            time.sleep(0.05)
        name = self.call_ok(job, PROPS, "Get", "ss", [JOB, "ErrorName"]).value
        error = self.call_ok(job, PROPS, "Get", "ss", [JOB, "Error"]).value
        if error and not name.startswith("org.storaged.Storaged1.Error."):
            self.problems.append(f"{entry}{args!r:.200}: job failed without a named error: {error}")
        if "internal error" in error or "Traceback" in error:
            self.problems.append(f"{entry}{args!r:.200}: job: internal error: {error}")
