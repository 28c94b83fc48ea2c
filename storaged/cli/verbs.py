"""storagectl's verbs: one function each, registered with the arguments it takes."""
from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from typing import Callable
from xml.etree import ElementTree

from dbus_fast import Variant

from .. import __version__, client
from ..api import (BUS_NAME, JOB_IFACE, JOBS_PATH, MANAGER_IFACE, MANAGER_PATH, POOL_IFACE,
                   VOLUME_IFACE)
from ..client.connection import DBUS, DBUS_PATH
from ..model.sizes import human_size, parse_size
from .progress import run_job
from .render import job_number, one_line
from .session import CliError, Session



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
    objs.listing(c, POOL_IFACE, objs.of(POOL_IFACE), "Name")


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
    name = pool_name_in(a.xml) or path
    await check_running(c, path, name)
    print(f"Pool {name} created")


def pool_name_in(xml: str) -> str | None:
    """The <name> of a pool definition the daemon has accepted (so it parses)."""
    try:
        return (ElementTree.fromstring(xml).findtext("name") or "").strip() or None
    except ElementTree.ParseError:
        return None


async def check_running(c: Session, path: str, name: str) -> None:
    """Start succeeds even when a PV is missing: the pool is then degraded, with a
    reason. An admin (and a script) must hear of it."""
    try:
        state = await c.get(path, POOL_IFACE, "State")
    except CliError as exc:
        if not exc.gone:
            raise
        # The call itself succeeded: report that, and why there is no more.
        print(f"storagectl: {one_line(exc.message)} before pool {name}'s state could be read",
              file=sys.stderr)
        return
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
    """From GetXML, which storaged wrote itself: the standard library's parser is enough
    (and storagectl needs no lxml)."""
    return any(pv.get("type") in ("iscsi", "nfs")
               for pv in ElementTree.fromstring(xml).findall("physical_volume"))


@verb("pool-stop", "stop a pool: deactivate it and take its PVs down",
      arg("pool", metavar="POOL", nargs="?", help="the pool's name"),
      arg("--network", action="store_true",
          help="instead of one POOL, every started pool with an iSCSI or NFS PV or shared "
               "between hosts; does nothing when storaged is not running (the shutdown unit "
               "storaged-network-pools uses this)"))
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
        name = props["Name"]
        if props["State"] == "inactive" or not (
                props.get("Shared") or has_network_pv(await c.call(path, POOL_IFACE, "GetXML"))):
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
    objs.listing(c, VOLUME_IFACE, objs.of(VOLUME_IFACE, pool=path), "Name")
    state = objs.tree[path][POOL_IFACE]["State"]
    if state in ("inactive", "building"):
        print(f"storagectl: pool {a.pool} is {state}, so no volume of it is listed; "
              f"'storagectl pool-start {a.pool}' starts it", file=sys.stderr)


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
      SIZE, arg("--thin", action="store_true", help="a thin volume, in the pool's thin pool"))
async def vol_create(c, a):
    options = {"thin": Variant("b", True)} if a.thin else {}
    await c.call(await c.pool(a.pool), POOL_IFACE, "AllocateVolume", "sta{sv}",
                 [a.name, a.size, options])
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
    if await run_job(c, a, path, VOLUME_IFACE, "Resize", "ta{sv}", [a.size, resize_options(a.force)]):
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


@verb("pool-import", "serve a volume group storaged made (on another host sharing it, or "
      "before an undefine) as its pool again, started",
      arg("volume_group", metavar="VG", help="the volume group's name"))
async def pool_import(c, a):
    path = await c.call(MANAGER_PATH, MANAGER_IFACE, "ImportPool", "s", [a.volume_group])
    name = await c.get(path, POOL_IFACE, "Name")
    await check_running(c, path, name)
    print(f"Pool {name} imported from volume group {a.volume_group}")


verb("domain-resolve", "turn every <disk type='volume'> of a libvirt <domain> into a block disk",
     xml_file("a <domain>"), reading=True)(resolver("ResolveDomain"))


@verb("job-list", "list the running and recently finished jobs", NAMES, reading=True)
async def job_list(c, a):
    objs = await c.objects()
    objs.listing(c, JOB_IFACE, objs.of(JOB_IFACE), "Job")


@verb("job-cancel", "cancel a job",
      arg("job", metavar="JOB", type=job_path, help="the job's number or object path"))
async def job_cancel(c, a):
    await c.call(a.job, JOB_IFACE, "Cancel")
    print(f"Job {job_number(a.job)} cancelled")


@verb("monitor", "print storaged's events as they happen, one a line, until interrupted",
      arg("--count", metavar="N", type=int, help="exit after N events"), reading=True)
async def monitor(c, a):
    async with c.storaged.events() as events:
        objs = await c.objects()  # the names that events are shown with; fails if storaged is down
        print(f"storagectl: monitoring storaged on {client.describe_bus(c.storaged.where)}; Ctrl-C stops",
              file=sys.stderr, flush=True)
        seen = 0
        # storaged may stop and come back (its events say so); the bus itself going
        # away ends the monitor, since nothing can come any more.
        while a.count is None or seen < a.count:
            try:
                ev = await events.__anext__()
            except client.Error:
                raise CliError("Failed", f"lost the connection to {client.describe_bus(c.storaged.where)}") from None
            event = objs.event(ev)
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


def resize_options(force: bool) -> dict:
    return {"force": Variant("b", True)} if force else {}
