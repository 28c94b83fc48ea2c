"""The entry points tests/fuzzing.py's Fuzzer does not reach by itself: the
Volume's methods, the Pool's PV and autostart methods, and every method
without arguments, with the same property (a success or a named error, the
daemon up, nothing changed by an error) and a clean-up after each success
that puts the pool back as it was (running, one PV, the `keep` volume)."""
from __future__ import annotations

import time

from dbus_fast import Variant
from hypothesis import strategies as st

from tests.fuzzing import HOSTILE_DOCS, KEEP, Fuzzer, any_text, names, physical_volume, sizes
from tests.harness import MANAGER, MGR, POOL, VOL, MiB

JOB = "org.storaged.Storaged1.Job"
PROPS = "org.freedesktop.DBus.Properties"
# Every method without arguments, on the object it belongs to.
NO_ARGUMENTS = [("pool", POOL, m) for m in ("Build", "Start", "Stop", "Delete", "Undefine",
                                            "Refresh", "GetXML")] + \
               [("volume", VOL, m) for m in ("Delete", "Wipe", "GetXML")] + [("manager", MGR, "Refresh")]
# entry point -> (interface, signature, object)
MORE = {"Resize": (VOL, "ta{sv}", "volume"), "Wipe": (VOL, "", "volume"),
        "AddPhysicalVolume": (POOL, "s", "pool"), "RemovePhysicalVolume": (POOL, "s", "pool"),
        "SetAutostart": (POOL, "b", "pool")}
ENTRIES = [*MORE, "NoArguments"]


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
                "NoArguments": st.tuples(st.sampled_from(NO_ARGUMENTS))}

    def devices_now(self) -> list[str]:
        return [d.value if hasattr(d, "value") else d for d in self._pvs()]

    def _pvs(self) -> list[str]:
        return self.call_ok(self.pool, PROPS, "Get", "ss", [POOL, "PhysicalVolumes"]).value

    def _target(self, kind: str) -> str:
        return {"pool": self.pool, "volume": self.keep, "manager": MANAGER}[kind]

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
        return self.judge(entry, args, self._send(self._target(kind), iface, entry, sig, args))

    def _clean_up(self, entry, args, result):
        if entry not in ENTRIES:
            return super()._clean_up(entry, args, result)
        member = args[1] if entry == "NoArguments" else entry
        if member in ("Resize", "Wipe", "RemovePhysicalVolume"):
            self._wait_job(entry, args, result)
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
