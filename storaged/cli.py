"""storagectl: the command-line client of storaged, with virsh-like verbs.

It talks to the daemon over D-Bus only, with plain method calls (no proxy
introspection: one round trip less per object), and never runs LVM or
imports the engine. Pools and volumes are named on the command line and
looked up with LookupPool/LookupVolume.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable

from dbus_fast import BusType, Message, MessageType, Variant
from storaged.bus.connection import PatientMessageBus as MessageBus

from . import __version__
from .bus.names import (BUS_NAME, ERROR_PREFIX, JOB_IFACE, MANAGER_IFACE, MANAGER_PATH,
                        POOL_IFACE, ROOT_PATH, VOLUME_IFACE)
from .errors import StoragedError
from .model.definitions import IscsiSource, NfsSource, parse_pool
from .model.sizes import human_size, parse_size

# The exit status says what kind of error it was; `storagectl --help` shows this table.
EXIT_CODES = {
    "Failed": 1, "InvalidArgument": 2, "NotFound": 3, "NotAuthorized": 4, "AlreadyExists": 5,
    "NoSpace": 6, "Busy": 7, "NotSupported": 8, "Degraded": 9, "Cancelled": 10,
}
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C

DBUS = "org.freedesktop.DBus"
DBUS_PATH = "/org/freedesktop/DBus"
PROPERTIES = f"{DBUS}.Properties"
OBJECT_MANAGER = f"{DBUS}.ObjectManager"
JOBS_PATH = f"{ROOT_PATH}/jobs"

# Methods of the contract that an older storaged may lack. dbus-fast answers
# UnknownMethod both for a missing method and for a path it does not export, so
# for these it means "not supported yet"; for any other it means the object went.
NEWER_METHODS = {"AddPhysicalVolume", "RemovePhysicalVolume", "Resize", "Wipe"}


class CliError(StoragedError):
    """A failure with the kind named by the daemon (or found here)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def words(name: str) -> list[str]:
    """'VolumeGroup' -> ['Volume', 'Group']; 'StartedByUID' -> ['Started', 'By', 'UID']."""
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*", name)


def snake(name: str) -> str:
    return "_".join(w.lower() for w in words(name))


def label(name: str) -> str:
    first, *rest = words(name)
    return " ".join([first] + [w if w.isupper() else w.lower() for w in rest])


def one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def describe_bus(where: str) -> str:
    return f"the {where} bus" if where in ("system", "session") else f"the bus at {where}"


# ------------------------------------------------------------------ the bus


async def connect(where: str) -> MessageBus:
    try:
        if where in ("system", "session"):
            bus = MessageBus(bus_type=BusType.SYSTEM if where == "system" else BusType.SESSION)
        else:
            bus = MessageBus(bus_address=where)
        return await bus.connect()
    except Exception as exc:  # any failure here means the same to the user
        raise CliError("Failed", f"cannot connect to {describe_bus(where)}: {exc}") from None


class Client:
    """Method calls to storaged, with D-Bus errors turned into CliErrors."""

    def __init__(self, bus: MessageBus, args: argparse.Namespace):
        self.bus = bus
        self.args = args
        self.verb = args.verb
        self.signals: asyncio.Queue[Message] = asyncio.Queue()

    async def call(self, path: str, iface: str, member: str, signature: str = "",
                   body=(), destination: str = BUS_NAME):
        reply = await self.bus.call(Message(destination=destination, path=path, interface=iface,
                                            member=member, signature=signature, body=list(body)))
        if reply.message_type == MessageType.ERROR:
            raise self.error(reply, path, member)
        return reply.body[0] if len(reply.body) == 1 else reply.body

    def error(self, reply: Message, path: str, member: str) -> CliError:
        name = reply.error_name or ""
        text = one_line(str(reply.body[0])) if reply.body else ""
        if name.startswith(ERROR_PREFIX + "."):
            return CliError(name[len(ERROR_PREFIX) + 1:], text)
        short = name.removeprefix(f"{DBUS}.Error.")
        where = describe_bus(self.args.bus)
        if short in ("AccessDenied", "InteractiveAuthorizationRequired"):
            # The bus policy refuses before the daemon sees the call.
            return CliError("NotAuthorized", f"{self.verb} needs root (the bus policy refused the call)")
        if short in ("ServiceUnknown", "NameHasNoOwner"):
            return CliError("Failed", f"storaged is not running on {where}")
        if short.startswith("Spawn."):
            return CliError("Failed", f"storaged could not be started on {where}: {text}")
        if short == "NoReply":
            return CliError("Failed", f"storaged did not answer: {text}")
        if short == "UnknownMethod" and member in NEWER_METHODS:
            return CliError("Failed", f"this storaged does not support {self.verb} yet")
        if short in ("UnknownMethod", "UnknownObject"):
            return CliError("NotFound", f"{path} is gone (removed meanwhile?)")
        return CliError("Failed", f"{name}: {text}" if text else name)

    async def get(self, path: str, iface: str, prop: str):
        return (await self.call(path, PROPERTIES, "Get", "ss", [iface, prop])).value

    async def pool(self, name: str) -> str:
        return await self.call(MANAGER_PATH, MANAGER_IFACE, "LookupPool", "s", [name])

    async def volume(self, pool: str, name: str) -> str:
        return await self.call(MANAGER_PATH, MANAGER_IFACE, "LookupVolume", "ss", [pool, name])

    async def objects(self) -> Objects:
        return Objects(await self.call(ROOT_PATH, OBJECT_MANAGER, "GetManagedObjects"))

    async def watch(self, namespace: str) -> None:
        """Queue storaged's signals under `namespace`, and its coming and going.
        Subscribe before the call whose effects are awaited, so none is missed."""
        def on_message(msg: Message) -> None:
            if msg.message_type == MessageType.SIGNAL:
                self.signals.put_nowait(msg)

        self.bus.add_message_handler(on_message)
        for rule in (f"type='signal',sender='{BUS_NAME}',path_namespace='{namespace}'",
                     f"type='signal',sender='{DBUS}',member='NameOwnerChanged',arg0='{BUS_NAME}'"):
            await self.call(f"/{DBUS.replace('.', '/')}", DBUS, "AddMatch", "s", [rule], destination=DBUS)

    def show(self, data, text: str) -> None:
        """The JSON for scripts, or the text for people."""
        print(json.dumps(data, indent=2) if self.args.json else text.rstrip("\n"))


# ------------------------------------------------------------------ objects and values


def plain(var, names: dict[str, str]):
    """A property's value for JSON: object paths become the names they stand for."""
    if var.signature == "o":
        return names.get(var.value, var.value)
    if var.signature == "ao":
        return sorted(names.get(p, p) for p in var.value)
    return var.value


def human(var, names: dict[str, str]) -> str:
    value = plain(var, names)
    if var.signature == "t":  # every 't' in the API is a size in bytes
        return human_size(value)
    if var.signature == "b":
        return "yes" if value else "no"
    if var.signature == "d":
        return f"{value:.0%}"
    if isinstance(value, list):
        return ", ".join(value) or "-"
    return str(value) or "-"


# The order people read an object in; properties not named here come last.
ORDER = ["Name", "UUID", "State", "StateReason", "Pool", "Path", "VolumeGroup", "Autostart",
         "Capacity", "Allocation", "Available", "Active", "PhysicalVolumes", "Volumes"]


def ordered(props: dict) -> list[tuple[str, object]]:
    return sorted(props.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER))


def job_number(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class Objects:
    """What GetManagedObjects returned, with names for the object paths."""

    def __init__(self, tree: dict):
        self.tree = tree
        self.names: dict[str, str] = {MANAGER_PATH: ""}
        for path, ifaces in tree.items():
            for iface, props in ifaces.items():
                self.learn(path, iface, props)

    def learn(self, path: str, iface: str, props: dict) -> None:
        if "Name" in props:
            self.names[path] = props["Name"].value
        elif iface == JOB_IFACE:
            self.names[path] = job_number(path)

    def of(self, iface: str, pool: str | None = None) -> list[tuple[str, dict]]:
        found = [(path, ifaces[iface]) for path, ifaces in self.tree.items() if iface in ifaces
                 and (pool is None or ifaces[iface]["Pool"].value == pool)]
        return sorted(found, key=lambda item: self.names.get(item[0], item[0]))

    def values(self, props: dict) -> dict:
        return {snake(k): plain(v, self.names) for k, v in ordered(props)}

    def record(self, path: str, props: dict) -> dict:
        return {"object": path, **self.values(props)}

    def title(self, path: str) -> str:
        """'pool', 'pool/volume' or a job's number."""
        if "/volumes/" in path:
            pool = path.split("/volumes/")[0]
            return f"{self.names.get(pool, '?')}/{self.names.get(path, '?')}"
        return self.names.get(path, job_number(path))

    def listing(self, client: Client, items: list[tuple[str, dict]], first: str,
                columns: list[str]) -> None:
        if client.args.names:
            for path, _ in items:
                print(self.names[path])
            return
        rows = [[self.names[path]] + [human(props[c], self.names) if c in props else "-" for c in columns]
                for path, props in items]
        client.show([self.record(path, props) for path, props in items],
                    table([first] + [label(c) for c in columns], rows))

    def info(self, client: Client, path: str, iface: str) -> None:
        props = self.tree[path][iface]
        shown = {label(k): human(v, self.names) for k, v in ordered(props) if v.value != ""}
        width = max(len(k) for k in shown) + 2
        client.show(self.record(path, props),
                    "\n".join(f"{k + ':':<{width}}{v}" for k, v in shown.items()))

    def event(self, msg: Message) -> dict | None:
        """One signal as an event record; `line` is its human form."""
        path, member, body = msg.path, msg.member, msg.body
        if member == "NameOwnerChanged":
            return {"event": "started" if body[2] else "stopped", "kind": "storaged",
                    "name": "", "object": "", "properties": {}, "line": ""}
        if member == "InterfacesAdded":
            path, ifaces = body
            iface, props = next(iter(ifaces.items()))
            self.learn(path, iface, props)
            return self._event("added", path, iface, props, detail=False)
        if member == "InterfacesRemoved":
            event = self._event("removed", body[0], body[1][0], {})
            self.names.pop(body[0], None)
            return event
        if member == "PropertiesChanged":
            event = self._event("changed", path, body[0], body[1])
            self.learn(path, body[0], body[1])  # after: a rename shows under the old name
            return event
        if member == "Completed" and msg.interface == JOB_IFACE:
            ok, text = body
            event = self._event("completed" if ok else "failed", path, JOB_IFACE, {})
            event["properties"] = {"success": ok, "message": text}
            event["line"] = f": {one_line(text)}" if text else ""
            return event
        return None

    def _event(self, event: str, path: str, iface: str, props: dict, detail: bool = True) -> dict:
        changes = ", ".join(f"{k}={human(v, self.names)}" for k, v in props.items())
        return {"event": event, "kind": iface.rsplit(".", 1)[-1].lower(), "name": self.title(path),
                "object": path, "properties": self.values(props),
                "line": f": {changes}" if detail and changes else ""}


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [headers] + rows) for i in range(len(headers))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), "-" * (sum(widths) + 2 * (len(widths) - 1))]
    return "\n".join(line.rstrip() for line in lines + [fmt.format(*r) for r in rows])


# ------------------------------------------------------------------ jobs


class Progress:
    """A bar on a terminal; otherwise a plain line every 10 %."""

    def __init__(self, what: str, bar: bool):
        self.what, self.bar, self.shown = what, bar, None

    def __call__(self, fraction: float) -> None:
        pct = max(0, min(100, int(fraction * 100)))
        if self.bar:
            done = pct * 30 // 100
            sys.stderr.write(f"\r{self.what} [{'#' * done}{'-' * (30 - done)}] {pct:3d}%")
            sys.stderr.flush()
            self.shown = pct
        elif self.shown is None or pct // 10 > self.shown // 10:
            print(f"{self.what}: {pct}%", file=sys.stderr, flush=True)
            self.shown = pct

    def end(self) -> None:
        if self.bar and self.shown is not None:
            sys.stderr.write("\n")


async def run_job(c: Client, a: argparse.Namespace, path: str, iface: str, member: str,
                  signature: str = "", body=()) -> bool:
    """Start a Job; wait for it unless --no-wait. True when it is done."""
    await c.watch(JOBS_PATH)
    job = await c.call(path, iface, member, signature, body)
    if a.no_wait:
        print(job)
        return False
    progress = Progress(c.verb, sys.stderr.isatty() and not a.no_progress)
    try:
        while True:
            msg = await c.signals.get()
            if msg.member == "NameOwnerChanged":
                raise CliError("Failed", f"storaged went away before job {job_number(job)} finished")
            if msg.path != job:
                continue
            if msg.member == "PropertiesChanged" and "Progress" in msg.body[1]:
                progress(msg.body[1]["Progress"].value)
            elif msg.member == "Completed":
                progress.end()
                ok, text = msg.body
                if not ok:
                    # The signal carries no error name, so the kind is lost here.
                    raise CliError("Failed", text or f"job {job_number(job)} failed")
                return True
    except asyncio.CancelledError:  # Ctrl-C: the job itself goes on in the daemon
        progress.end()
        n = job_number(job)
        print(f"storagectl: job {n} goes on; 'storagectl job-cancel {n}' stops it", file=sys.stderr)
        raise


# ------------------------------------------------------------------ verbs


@dataclass
class Verb:
    run: Callable
    help: str
    arguments: tuple
    reading: bool  # gets --json
    job: bool      # gets --no-wait and --no-progress


VERBS: dict[str, Verb] = {}


def verb(name: str, help: str, *arguments, reading: bool = False, job: bool = False):
    def register(fn):
        VERBS[name] = Verb(fn, help, arguments, reading, job)
        return fn
    return register


def arg(*flags, **kw):
    return flags, kw


def read_xml(name: str) -> str:
    """An XML file, or standard input for '-'; read while parsing the arguments."""
    try:
        if name == "-":
            return sys.stdin.read()
        with open(name) as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError("InvalidArgument", f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from None


def job_path(text: str) -> str:
    if re.fullmatch(r"\d+", text):
        return f"{JOBS_PATH}/{text}"
    if re.fullmatch(re.escape(JOBS_PATH) + r"/\w+", text):
        return text
    raise CliError("InvalidArgument", f"{text!r} is not a job number or a job's object path")


POOL = arg("pool", metavar="POOL", help="the pool's name")
VOLUME = arg("volume", metavar="VOLUME", help="the volume's name")
SIZE = arg("size", metavar="SIZE", type=parse_size,
           help="bytes, or a number with K/M/G/T (powers of 1024: also KiB...) or KB/MB/GB/TB")
NAMES = arg("--name", dest="names", action="store_true", help="print only the names, one a line")


def xml_file(what: str):
    return arg("xml", metavar="FILE", type=read_xml, help=f"{what} XML file, or - for standard input")


@verb("pool-list", "list the pools", NAMES, reading=True)
async def pool_list(c, a):
    objs = await c.objects()
    objs.listing(c, objs.of(POOL_IFACE), "Name",
                 ["State", "Autostart", "Capacity", "Allocation", "Available"])


@verb("pool-info", "show a pool's state and sizes", POOL, reading=True)
async def pool_info(c, a):
    path = await c.pool(a.pool)
    (await c.objects()).info(c, path, POOL_IFACE)


@verb("pool-dumpxml", "print a pool's definition", POOL, reading=True)
async def pool_dumpxml(c, a):
    xml = await c.call(await c.pool(a.pool), POOL_IFACE, "GetXML")
    c.show({"xml": xml}, xml)


@verb("pool-define", "define a pool from XML, touching no storage", xml_file("a <pool>"))
async def pool_define(c, a):
    path = await c.call(MANAGER_PATH, MANAGER_IFACE, "DefinePool", "s", [a.xml])
    print(f"Pool {await c.get(path, POOL_IFACE, 'Name')} defined")


@verb("pool-create", "define, build and start a pool from XML", xml_file("a <pool>"))
async def pool_create(c, a):
    path = await c.call(MANAGER_PATH, MANAGER_IFACE, "CreatePool", "s", [a.xml])
    name = await c.get(path, POOL_IFACE, "Name")
    await check_running(c, path, name)
    print(f"Pool {name} created")


async def check_running(c: Client, path: str, name: str) -> None:
    """Start succeeds even when a PV is missing: the pool is then degraded, with a
    reason. An admin (and a script) must hear of it."""
    state = await c.get(path, POOL_IFACE, "State")
    if state != "running":
        reason = await c.get(path, POOL_IFACE, "StateReason")
        raise CliError("Degraded" if state == "degraded" else "Failed",
                       f"pool {name} is {state}" + (f": {reason}" if reason else ""))


def pool_action(method: str, done: str):
    async def run(c, a):
        path = await c.pool(a.pool)
        await c.call(path, POOL_IFACE, method)
        if method == "Start":
            await check_running(c, path, a.pool)
        print(f"Pool {a.pool} {done}")
    return run


for _name, _method, _done, _help in [
    ("pool-build", "Build", "built", "build a pool's storage: files, loop devices, PVs, volume group"),
    ("pool-start", "Start", "started", "start a pool: bring its PVs up and activate its volume group"),
    ("pool-delete", "Delete", "deleted", "remove a stopped pool's storage (VG, PVs, files it made)"),
    ("pool-undefine", "Undefine", "undefined", "forget a stopped pool's definition"),
]:
    verb(_name, _help, POOL)(pool_action(_method, _done))


def has_network_pv(xml: str) -> bool:
    return any(isinstance(src, (IscsiSource, NfsSource)) for src in parse_pool(xml).sources)


@verb("pool-stop", "stop a pool: deactivate it and take its PVs down",
      arg("pool", metavar="POOL", nargs="?", help="the pool's name"),
      arg("--network", action="store_true",
          help="instead of one POOL, every started pool with an iSCSI or NFS PV; does nothing "
               "when storaged is not running (the shutdown unit storaged-network-pools uses this)"))
async def pool_stop(c, a):
    if bool(a.pool) == a.network:
        raise CliError("InvalidArgument", "pool-stop takes a POOL or --network (one of them)")
    if a.pool:
        await c.call(await c.pool(a.pool), POOL_IFACE, "Stop")
        print(f"Pool {a.pool} stopped")
        return
    # At shutdown a call must not start storaged again just to find nothing to do.
    if not await c.call(DBUS_PATH, DBUS, "NameHasOwner", "s", [BUS_NAME], destination=DBUS):
        print("storaged is not running: no pool to stop")
        return
    objs = await c.objects()
    failed = []
    for path, props in objs.of(POOL_IFACE):
        name = props["Name"].value
        if props["State"].value == "inactive" or \
                not has_network_pv(await c.call(path, POOL_IFACE, "GetXML")):
            continue
        try:
            await c.call(path, POOL_IFACE, "Stop")
            print(f"Pool {name} stopped")
        except CliError as exc:  # the others are still stopped
            print(f"storagectl: pool {name}: {one_line(exc.message)}", file=sys.stderr)
            failed.append(exc)
    if failed:
        raise CliError(failed[0].kind, f"{len(failed)} network pool(s) could not be stopped")


@verb("pool-refresh", "re-read LVM's state, for one pool or all",
      arg("pool", metavar="POOL", nargs="?", help="the pool's name (default: every pool)"))
async def pool_refresh(c, a):
    if a.pool:
        await c.call(await c.pool(a.pool), POOL_IFACE, "Refresh")
    else:
        await c.call(MANAGER_PATH, MANAGER_IFACE, "Refresh")
    print(f"Pool {a.pool} refreshed" if a.pool else "Pools refreshed")


@verb("pool-autostart", "start a pool when storaged starts (or, with --disable, not)", POOL,
      arg("--disable", action="store_true", help="do not start it at boot"))
async def pool_autostart(c, a):
    await c.call(await c.pool(a.pool), POOL_IFACE, "SetAutostart", "b", [not a.disable])
    print(f"Pool {a.pool} {'unmarked' if a.disable else 'marked'} as autostarted")


@verb("pool-add-pv", "add a physical volume to a pool", POOL, xml_file("a <physical_volume>"))
async def pool_add_pv(c, a):
    await c.call(await c.pool(a.pool), POOL_IFACE, "AddPhysicalVolume", "s", [a.xml])
    print(f"Physical volume added to pool {a.pool}")


@verb("pool-remove-pv", "move the data off a physical volume and remove it from a pool (a job)",
      POOL, arg("pv", metavar="PV", help="the physical volume: its device, or its file or device "
                                         "as in the pool's XML"), job=True)
async def pool_remove_pv(c, a):
    if await run_job(c, a, await c.pool(a.pool), POOL_IFACE, "RemovePhysicalVolume", "s", [a.pv]):
        print(f"Physical volume {a.pv} removed from pool {a.pool}")


@verb("vol-list", "list a pool's volumes", POOL, NAMES, reading=True)
async def vol_list(c, a):
    path = await c.pool(a.pool)
    objs = await c.objects()
    objs.listing(c, objs.of(VOLUME_IFACE, pool=path), "Name", ["Path", "Capacity", "Active"])


@verb("vol-info", "show a volume's path and size", POOL, VOLUME, reading=True)
async def vol_info(c, a):
    path = await c.volume(a.pool, a.volume)
    (await c.objects()).info(c, path, VOLUME_IFACE)


@verb("vol-path", "print a volume's device path", POOL, VOLUME, reading=True)
async def vol_path(c, a):
    path = await c.get(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Path")
    c.show({"path": path}, path)


@verb("vol-dumpxml", "print a volume's definition", POOL, VOLUME, reading=True)
async def vol_dumpxml(c, a):
    xml = await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "GetXML")
    c.show({"xml": xml}, xml)


@verb("vol-create", "create a volume", POOL, arg("name", metavar="NAME", help="the new volume's name"),
      SIZE)
async def vol_create(c, a):
    await c.call(await c.pool(a.pool), POOL_IFACE, "AllocateVolume", "sta{sv}", [a.name, a.size, {}])
    print(f"Volume {a.name} created in pool {a.pool}")


@verb("vol-create-xml", "create a volume from XML", POOL, xml_file("a <volume>"))
async def vol_create_xml(c, a):
    path = await c.call(await c.pool(a.pool), POOL_IFACE, "CreateVolume", "s", [a.xml])
    print(f"Volume {await c.get(path, VOLUME_IFACE, 'Name')} created in pool {a.pool}")


@verb("vol-delete", "delete a volume and its data", POOL, VOLUME)
async def vol_delete(c, a):
    await c.call(await c.volume(a.pool, a.volume), VOLUME_IFACE, "Delete")
    print(f"Volume {a.volume} deleted from pool {a.pool}")


@verb("vol-resize", "change a volume's size (a job)", POOL, VOLUME, SIZE,
      arg("--force", action="store_true", help="allow shrinking, which destroys data"), job=True)
async def vol_resize(c, a):
    path = await c.volume(a.pool, a.volume)
    options = {"force": Variant("b", True)} if a.force else {}
    if await run_job(c, a, path, VOLUME_IFACE, "Resize", "ta{sv}", [a.size, options]):
        print(f"Volume {a.volume} resized to {human_size(a.size)}")


@verb("vol-wipe", "overwrite a volume's data with zeros (a job)", POOL, VOLUME, job=True)
async def vol_wipe(c, a):
    path = await c.volume(a.pool, a.volume)
    if await run_job(c, a, path, VOLUME_IFACE, "Wipe"):
        print(f"Volume {a.volume} wiped")


def resolver(method: str):
    async def run(c, a):
        xml = await c.call(MANAGER_PATH, MANAGER_IFACE, method, "s", [a.xml])
        c.show({"xml": xml}, xml)
    return run


verb("resolve-disk", "turn a guest's <disk type='volume'> into a block device <disk>",
     xml_file("a <disk>"), reading=True)(resolver("ResolveDisk"))


@verb("pool-import-libvirt", "adopt a libvirt logical pool's volume group as it is, started",
      xml_file("a libvirt <pool> (virsh pool-dumpxml)"))
async def pool_import_libvirt(c, a):
    path = await c.call(MANAGER_PATH, MANAGER_IFACE, "ImportLibvirtPool", "s", [a.xml])
    name = await c.get(path, POOL_IFACE, "Name")
    await check_running(c, path, name)
    print(f"Pool {name} imported from libvirt")


verb("domain-resolve", "turn every <disk type='volume'> of a libvirt <domain> into a block disk",
     xml_file("a <domain>"), reading=True)(resolver("ResolveDomain"))


@verb("job-list", "list the running and recently finished jobs", NAMES, reading=True)
async def job_list(c, a):
    objs = await c.objects()
    objs.listing(c, objs.of(JOB_IFACE), "Job",
                 ["Operation", "Progress", "Completed", "StartedByUID", "Error"])


@verb("job-cancel", "cancel a job",
      arg("job", metavar="JOB", type=job_path, help="the job's number or object path"))
async def job_cancel(c, a):
    await c.call(a.job, JOB_IFACE, "Cancel")
    print(f"Job {job_number(a.job)} cancelled")


@verb("monitor", "print storaged's events as they happen, one a line, until interrupted",
      arg("--count", metavar="N", type=int, help="exit after N events"), reading=True)
async def monitor(c, a):
    await c.watch(ROOT_PATH)
    objs = await c.objects()  # the names that events are shown with; fails if storaged is down
    print(f"storagectl: monitoring storaged on {describe_bus(a.bus)}; Ctrl-C stops",
          file=sys.stderr, flush=True)
    seen = 0
    while a.count is None or seen < a.count:
        event = objs.event(await c.signals.get())
        if event is None:
            continue
        seen += 1
        line = event.pop("line")
        if a.json:
            print(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}), flush=True)
        else:
            head = " ".join(x for x in (time.strftime("%H:%M:%S"), event["event"], event["kind"],
                                        event["name"]) if x)
            print(head + line, flush=True)


@verb("version", "show the versions of storagectl and of the running storaged", reading=True)
async def version(c, a):
    daemon = await c.get(MANAGER_PATH, MANAGER_IFACE, "Version")
    c.show({"storagectl": __version__, "storaged": daemon},
           f"storagectl {__version__}\nstoraged {daemon}")


# ------------------------------------------------------------------ main


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        """One line, like every other error, and the usage exit code."""
        raise CliError("InvalidArgument", f"{message} (see '{self.prog} --help')")


NOTES = {1: "failed, or any other error (no bus, storaged not running)",
         2: "invalid argument, or a usage error"}
EPILOG = "exit status:\n" + "\n".join(
    f"  {code:>3}  {NOTES.get(code) or ' '.join(words(kind)).lower()}"
    for kind, code in sorted(EXIT_CODES.items(), key=lambda kv: kv[1])
) + f"\n  {INTERRUPTED}  interrupted (Ctrl-C)\n\nsizes: bytes, or a number with a unit: 10G, 512MiB, 1.5T ..."


def parser() -> Parser:
    p = Parser(prog="storagectl", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
               description="Manage storaged's storage pools and volumes over D-Bus.")
    p.add_argument("--bus", default=os.environ.get("STORAGED_BUS") or "system",
                   help="system (the default, or $STORAGED_BUS when set), session, "
                        "or a D-Bus address such as unix:path=/run/x/bus")
    sub = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, v in VERBS.items():
        s = sub.add_parser(name, help=v.help, description=v.help[0].upper() + v.help[1:] + ".")
        for flags, kw in v.arguments:
            s.add_argument(*flags, **kw)
        if v.reading:
            s.add_argument("--json", action="store_true", help="print JSON, for scripts")
        if v.job:
            s.add_argument("--no-wait", action="store_true", help="print the job's path and return")
            s.add_argument("--no-progress", action="store_true", help="plain lines, not a progress bar")
    return p


async def run(a: argparse.Namespace) -> None:
    bus = await connect(a.bus)
    try:
        await VERBS[a.verb].run(Client(bus, a), a)
    finally:
        bus.disconnect()


def main(argv: list[str] | None = None) -> int:
    a = None
    try:
        a = parser().parse_args(argv)  # sizes and files are checked here, before any call
        a.json = getattr(a, "json", False)
        asyncio.run(run(a))
        return 0
    except StoragedError as exc:
        kind = "" if exc.kind == "Failed" else " ".join(words(exc.kind)).lower() + ": "
        print(f"storagectl: {kind}{one_line(exc.message)}", file=sys.stderr)
        return EXIT_CODES.get(exc.kind, 1)
    except KeyboardInterrupt:
        if not a or a.verb != "monitor":  # Ctrl-C is how a monitor ends
            print("storagectl: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (storagectl ... | head); say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # never a traceback, but say what it was
        print(f"storagectl: unexpected error: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
