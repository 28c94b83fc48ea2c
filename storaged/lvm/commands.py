"""LVM commands the engine needs, each one argv list through the runner.

LVM's failures become typed errors that carry LVM's own message.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re

from ..system import runner
from ..errors import AlreadyExists, Busy, Failed, NoSpace, NotFound
from ..system.runner import CommandFailed
from .lockd import (LV_HELD_ELSEWHERE, VG_HELD_ELSEWHERE, HostLease, Lockspace, parse_host_status,
                    parse_info)
from .report import LV_COLUMNS, PV_COLUMNS, VG_COLUMNS, VgReport, parse_fullreport

log = logging.getLogger(__name__)

LVM = "lvm"
# Every LV storaged allocates carries this tag, so that Delete can tell its own
# volumes from those an admin made in the same VG with plain lvm commands.
OWN_TAG = "storaged"
# Every VG storaged creates carries its pool's name and UUID as tags, so that
# another host (or this one, after Undefine) can serve it again: ImportPool.
POOL_NAME_TAG, POOL_UUID_TAG = "storaged.pool=", "storaged.uuid="
# `vgchange --lock-start` waits for this host's own lease after a crash:
# 8 x sanlock's I/O timeout + 60 s (140 s with the default 10 s), and more.
LOCK_START_TIMEOUT = 600.0
# A VG lock another host's command holds for a moment: tried again this often.
VG_LOCK_RETRIES, VG_LOCK_RETRY_DELAY = 8, 0.5

# (pattern in LVM's stderr, error type); first match wins.
_ERROR_MAP: list[tuple[re.Pattern, type[Failed]]] = [
    (LV_HELD_ELSEWHERE, Busy),
    (re.compile(r"insufficient (free )?(space|extents)|not enough free", re.I), NoSpace),
    (re.compile(r"already exists", re.I), AlreadyExists),
    (re.compile(r"in use|is open|contains a filesystem in use|busy", re.I), Busy),
    (re.compile(r"not found|failed to find|does not exist|cannot find", re.I), NotFound),
]


def _typed(exc: CommandFailed, what: str) -> Failed:
    said = runner._useful_lines(exc.stderr) or exc.stdout.strip() or f"exit status {exc.returncode}"
    for pattern, kind in _ERROR_MAP:
        if pattern.search(exc.stderr):
            return kind(f"{what}: LVM says: {said}")
    return Failed(f"{what}: LVM says: {said}")


def _held_elsewhere(exc: CommandFailed) -> bool:
    return bool(VG_HELD_ELSEWHERE.search(exc.stderr))


DEVICES_FILE_TIMEOUT = 15.0


class _Shared:
    """One of our LVM commands under way (see Lvm._shared)."""

    def __init__(self, lvm: "Lvm"):
        self.lvm = lvm

    async def __aenter__(self):
        async with self.lvm._exclusive:  # waits while lvmdevices runs
            self.lvm._running += 1
            self.lvm._idle.clear()

    async def __aexit__(self, *exc):
        self.lvm._running -= 1
        if not self.lvm._running:
            self.lvm._idle.set()


class Lvm:
    """Runs `lvm <command>`; one instance per daemon."""

    def __init__(self, timeout: float = runner.COMMAND_TIMEOUT):
        self.timeout = timeout
        self.backup_dir: str | None = None
        self.backups_enabled = False
        self.devices_file = False  # LVM's devices file in use (devices/use_devicesfile)
        self.use_lvmlockd = False  # global/use_lvmlockd: shared VGs possible here
        self.host_id = 0  # local/host_id (lvmlocal.conf); 0: not set
        self.activation_configured = False  # global/activation
        self.calls = 0  # how many LVM commands ran; the benchmarks read it
        self._running = 0  # our LVM commands under way (see _shared)
        self._exclusive = asyncio.Lock()
        self._idle = asyncio.Event()

    async def _lvm(self, what: str, *args: str, timeout: float | None = None) -> str:
        for attempt in range(VG_LOCK_RETRIES + 1):
            self.calls += 1
            async with self._shared():
                try:
                    res = await runner.run([LVM, *args], timeout=timeout or self.timeout)
                    return res.stdout
                except CommandFailed as exc:
                    # In a shared VG another host's command may hold the VG lock
                    # for a moment (lvmlockd itself retries only briefly).
                    if not _held_elsewhere(exc) or attempt == VG_LOCK_RETRIES:
                        raise _typed(exc, what) from None
            log.info("%s: the volume group's lock is held by another host; trying again", what)
            await asyncio.sleep(VG_LOCK_RETRY_DELAY * (attempt + 1))

    def _shared(self):
        """Any number of our LVM commands run at once, but none while
        `lvmdevices` runs: it takes LVM's locks in the opposite order from
        pvcreate (devices file, then global), and the two deadlock."""
        return _Shared(self)

    async def _devices_file_delete(self, device: str) -> None:
        async with self._exclusive:
            while self._running:
                await self._idle.wait()
            self.calls += 1
            try:
                # Short: an admin's own pvcreate can still deadlock with it;
                # the entry left behind only makes lvm warn.
                await runner.run([LVM, "lvmdevices", "--deldev", device],
                                 timeout=DEVICES_FILE_TIMEOUT)
            except Failed as exc:
                log.warning("lvmdevices --deldev %s: %s", device, exc.message)

    async def probe(self) -> None:
        """Learn how LVM is set up (one call at start): whether it activates,
        where it writes its metadata backups, lvmlockd and the host_id."""
        out = await self._lvm("lvm config", "config", "--typeconfig", "full",
                              "backup/backup", "backup/backup_dir", "devices/use_devicesfile",
                              "global/use_lvmlockd", "local/host_id", "global/activation")
        values = dict(re.findall(r'^\s*(\w+)="?([^"\n]*)"?\s*$', out, re.M))
        self.backups_enabled = values.get("backup") == "1"
        self.backup_dir = values.get("backup_dir") or None
        self.devices_file = values.get("use_devicesfile") == "1"
        self.use_lvmlockd = values.get("use_lvmlockd") == "1"
        self.host_id = int(values["host_id"]) if values.get("host_id", "").isdigit() else 0
        self.activation_configured = values.get("activation") == "1"

    async def fullreport(self, vgs: list[str] | None = None) -> dict[str, VgReport]:
        """Every VG LVM sees, or only those named (a VG named that is not
        there: NotFound)."""
        out = await self._lvm(
            "reading LVM state", "fullreport", "--reportformat", "json", "--units", "b",
            "--nosuffix",
            "--configreport", "vg", "-o", VG_COLUMNS,
            "--configreport", "pv", "-o", PV_COLUMNS,
            "--configreport", "lv", "-o", LV_COLUMNS,
            # fullreport always has segment subreports; select none of their rows
            # (a quarter of the output at 10,000 LVs).
            "--configreport", "pvseg", "-o", "pvseg_start", "-S", "pvseg_size=0",
            "--configreport", "seg", "-o", "seg_start", "-S", "seg_size_pe=0",
            *(["--", *vgs] if vgs else []),
        )
        return parse_fullreport(out)

    async def pv_vg_names(self) -> dict[str, str]:
        """Device -> VG name (empty for an orphan PV) for every PV LVM sees."""
        out = await self._lvm("listing physical volumes", "pvs", "--reportformat", "json",
                              "-o", "pv_name,vg_name")
        data = json.loads(out) if out.strip() else {"report": []}
        return {p["pv_name"]: p["vg_name"] for r in data["report"] for p in r.get("pv", [])}

    async def pvcreate(self, device: str) -> None:
        await self._lvm(f"pvcreate {device}", "pvcreate", "--yes", device)

    async def pvremove(self, device: str) -> None:
        await self._lvm(f"pvremove {device}", "pvremove", "--yes", device)
        if self.devices_file:
            # pvremove leaves the device's entry in LVM's devices file, and every
            # lvm command then warns about it once the file or disk is gone.
            await self._devices_file_delete(device)

    async def lv_tags(self, vg: str) -> dict[str, list[str]]:
        """Each visible LV of `vg` with its tags."""
        out = await self._lvm(f"listing volumes of {vg}", "lvs", "--reportformat", "json",
                              "-o", "lv_name,lv_tags", vg)
        data = json.loads(out) if out.strip() else {"report": []}
        return {lv["lv_name"]: [t for t in lv["lv_tags"].split(",") if t]
                for r in data["report"] for lv in r.get("lv", [])}

    async def vgcreate(self, vg: str, devices: list[str], pool_name: str = "",
                       pool_uuid: str = "", shared: bool = False, host_id: int = 0) -> None:
        tags = []
        if pool_uuid:
            tags = ["--addtag", POOL_NAME_TAG + pool_name, "--addtag", POOL_UUID_TAG + pool_uuid]
        # A shared VG starts its lockspace as it is made: it needs the host_id.
        lock = ["--shared", *_host_id_config(host_id)] if shared else []
        await self._lvm(f"vgcreate {vg}", "vgcreate", *lock, *tags, vg, *devices,
                        timeout=LOCK_START_TIMEOUT if shared else None)

    async def lv_uuids(self, vg: str) -> dict[str, str]:
        """LV UUID -> name of every LV of `vg`, hidden ones included."""
        out = await self._lvm(f"listing volumes of {vg}", "lvs", "-a", "--reportformat", "json",
                              "-o", "lv_uuid,lv_name", vg)
        data = json.loads(out) if out.strip() else {"report": []}
        return {lv["lv_uuid"]: lv["lv_name"].strip("[]")
                for r in data["report"] for lv in r.get("lv", [])}

    async def vg_identity(self, vg: str) -> tuple[str, str, str] | None:
        """The pool name and UUID a VG's tags carry, and its lock type
        (`sanlock`, or "" for a local VG); None without storaged's tags."""
        out = await self._lvm(f"reading volume group {vg}", "vgs", "--reportformat", "json",
                              "-o", "vg_name,vg_tags,vg_lock_type", vg)
        data = json.loads(out) if out.strip() else {"report": []}
        for r in data["report"]:
            for row in r.get("vg", []):
                tags = [t for t in row["vg_tags"].split(",") if t]
                name = next((t[len(POOL_NAME_TAG):] for t in tags if t.startswith(POOL_NAME_TAG)), "")
                uuid = next((t[len(POOL_UUID_TAG):] for t in tags if t.startswith(POOL_UUID_TAG)), "")
                if name and uuid:
                    return name, uuid, row.get("vg_lock_type", "") if row.get("vg_lock_type") != "none" else ""
        return None

    async def lock_start(self, vg: str, host_id: int = 0) -> None:
        """Join the VG's lockspace; waits (long, after a crash) for this host's lease."""
        await self._lvm(f"starting the lockspace of {vg}", "vgchange", "--lock-start",
                        *_host_id_config(host_id), vg, timeout=LOCK_START_TIMEOUT)

    async def lock_stop(self, vg: str) -> None:
        await self._lvm(f"stopping the lockspace of {vg}", "vgchange", "--lock-stop", vg)

    async def lock_info(self) -> dict[str, Lockspace]:
        """The lockspaces lvmlockd has started on this host, with their LV locks."""
        self.calls += 1
        try:
            res = await runner.run(["lvmlockctl", "--info"], timeout=self.timeout)
        except CommandFailed as exc:
            said = runner._useful_lines(exc.stderr) or f"exit status {exc.returncode}"
            raise Failed(f"lvmlockd does not answer (is lvmlockd.service running?): {said}") from None
        return parse_info(res.stdout)

    async def vgextend(self, vg: str, devices: list[str]) -> None:
        await self._lvm(f"vgextend {vg}", "vgextend", vg, *devices)

    async def vgremove(self, vg: str) -> None:
        await self._lvm(f"vgremove {vg}", "vgremove", "--force", "--yes", vg)

    async def vgscan(self) -> None:
        await self._lvm("vgscan", "vgscan")

    async def vgchange_activate(self, vgs: str | list[str], active: bool) -> None:
        vgs = [vgs] if isinstance(vgs, str) else vgs
        await self._lvm(f"{'activating' if active else 'deactivating'} {', '.join(vgs)}",
                        "vgchange", "-ay" if active else "-an", *vgs)

    async def lvcreate(self, vg: str, name: str, size: int) -> None:
        await self._lvm(f"creating volume {name} in {vg}", "lvcreate", "--yes",
                        "--addtag", OWN_TAG, "--name", name, "--size", f"{size}b", vg)

    async def lvresize(self, vg: str, name: str, size: int, shrink: bool) -> None:
        args = ["lvresize", "--yes", "--size", f"{size}b", f"{vg}/{name}"]
        if shrink:
            args.insert(1, "--force")
        await self._lvm(f"resizing volume {name} in {vg}", *args)

    async def vgreduce(self, vg: str, device: str) -> None:
        await self._lvm(f"vgreduce {vg} {device}", "vgreduce", vg, device)

    async def pvmove(self, device: str, on_progress, on_cancel=None) -> None:
        """Move every used extent off `device`; on_progress(fraction) as it goes.

        Cancelled: `await on_cancel()` (pvmove_abort: LVM's own way to stop a
        move, beside the running pvmove, which then exits by itself), and the
        pvmove is killed only if it does not exit within the runner's CANCEL_WAIT.
        Killed while it sets the move up (LVs suspended, reloaded, udev cookies
        pending), it could leave an LV without its node."""
        self.calls += 1

        def line(text: str) -> None:
            m = re.search(r"Moved: ([0-9.]+)%", text)
            if m:
                on_progress(float(m.group(1)) / 100)
        try:
            await runner.run_lines([LVM, "pvmove", "--interval", "1", device], line,
                                   timeout=24 * 3600, on_cancel=on_cancel)
        except CommandFailed as exc:
            raise _typed(exc, f"pvmove {device}") from None

    async def pvmove_abort(self) -> None:
        """Roll back unfinished moves: data stays where it was.

        --interval 1: with lvmpolld (Debian's default) the abort is done by an
        lvpoll that lvmpolld starts, and this command asks lvmpolld whether it
        is done every --interval seconds: polling_interval, 15 s, without it."""
        out = await self._lvm("pvmove --abort", "pvmove", "--abort", "--interval", "1")
        if out.strip():
            log.info("pvmove --abort: %s", "; ".join(ln.strip() for ln in out.splitlines() if ln.strip()))

    async def lvremove(self, vg: str, name: str) -> None:
        await self._lvm(f"removing volume {name} from {vg}", "lvremove", "--force", "--yes",
                        f"{vg}/{name}")

    # -------------------------------------------- thin pools, snapshots (device-mapper only)

    async def lvcreate_thin_pool(self, vg: str, name: str, size: int | None, percent_vg: int | None) -> None:
        where = ["--size", f"{size}b"] if size else ["--extents", f"{percent_vg}%VG"]
        await self._lvm(f"creating thin pool {name} in {vg}", "lvcreate", "--yes", "--type",
                        "thin-pool", "--addtag", OWN_TAG, "--name", name, *where, vg)

    async def lvcreate_thin(self, vg: str, thin_pool: str, name: str, size: int) -> None:
        await self._lvm(f"creating thin volume {name} in {vg}", "lvcreate", "--yes", "--type",
                        "thin", "--addtag", OWN_TAG, "--name", name, "--virtualsize", f"{size}b",
                        "--thinpool", thin_pool, vg)

    async def lvcreate_snapshot(self, vg: str, origin: str, name: str, size: int | None) -> None:
        """A thin snapshot (size None: of a thin origin) or a copy-on-write one.
        Thin snapshots are made without LVM's activation skip, so they appear."""
        sized = ["--size", f"{size}b"] if size else ["--setactivationskip", "n"]
        await self._lvm(f"creating snapshot {name} of {origin} in {vg}", "lvcreate", "--yes",
                        "--snapshot", "--addtag", OWN_TAG, "--name", name, *sized, f"{vg}/{origin}")

    async def lvextend_thin_pool(self, vg: str, name: str, data: int, metadata: int) -> None:
        args = ["lvextend", "--yes"]
        if data:
            args += ["--size", f"+{data}b"]
        if metadata:
            args += ["--poolmetadatasize", f"+{metadata}b"]
        await self._lvm(f"extending thin pool {name} in {vg}", *args, f"{vg}/{name}")

    async def lvrename(self, vg: str, old: str, new: str) -> None:
        await self._lvm(f"renaming volume {old} in {vg} to {new}", "lvrename", vg, old, new)

    async def host_leases(self, vg: str) -> list[HostLease]:
        """The other hosts' leases in the VG's sanlock lockspace (lvmlockd names it lvm_VG)."""
        self.calls += 1
        res = await runner.run(["sanlock", "client", "host_status", "-s", f"lvm_{vg}", "-D"],
                               timeout=self.timeout)
        return parse_host_status(res.stdout)

    async def lvchange_activate(self, vg: str, name: str, active: bool, mode: str = "") -> None:
        """mode "e" or "s": an exclusive or shared lock in a shared VG."""
        await self._lvm(f"{'activating' if active else 'deactivating'} {vg}/{name}", "lvchange",
                        "--activate", f"{mode}y" if active else "n", f"{vg}/{name}")

    async def lvconvert_merge(self, vg: str, snapshot: str) -> str:
        """Start merging a snapshot into its origin; LVM's words (they say when
        the merge is deferred to the origin's next activation)."""
        self.calls += 1
        try:
            res = await runner.run([LVM, "lvconvert", "--yes", "--merge", "--background",
                                    f"{vg}/{snapshot}"], timeout=self.timeout)
        except CommandFailed as exc:
            raise _typed(exc, f"merging {snapshot} into its origin") from None
        return (res.stdout + res.stderr).strip()

    async def thin_pool_status(self) -> dict[str, tuple[float, float]]:
        """Every active thin pool's (data, metadata) use, 0..1, by device-mapper
        name: one dmsetup call, however many pools and volumes there are."""
        self.calls += 1
        try:
            res = await runner.run(["dmsetup", "status", "--target", "thin-pool"], timeout=self.timeout)
        except CommandFailed as exc:
            raise Failed(f"reading thin pool use: {exc.stderr.strip()}") from None
        found = {}
        for line in res.stdout.splitlines():
            # NAME: START LEN thin-pool TRANSACTION USED/TOTAL(meta) USED/TOTAL(data) ...
            m = re.match(r"(\S+): \d+ \d+ thin-pool \d+ (\d+)/(\d+) (\d+)/(\d+)", line)
            if m:
                mu, mt, du, dt = (int(x) for x in m.groups()[1:])
                found[m.group(1)] = (du / dt if dt else 0.0, mu / mt if mt else 0.0)
        return found

    async def dm_states(self) -> dict[str, str]:
        """Every device-mapper device's attributes by name ("L--w": a live
        table, no inactive one, not suspended, writable): one dmsetup call,
        which reads no PV (an LVM command would scan them all)."""
        self.calls += 1
        try:
            res = await runner.run(["dmsetup", "info", "-c", "--noheadings", "--separator", ":",
                                    "-o", "name,attr"], timeout=self.timeout)
        except CommandFailed as exc:
            raise Failed(f"reading device-mapper's devices: {exc.stderr.strip()}") from None
        found = {}
        for line in res.stdout.splitlines():
            name, sep, attr = line.strip().rpartition(":")
            if sep and name:
                found[name] = attr
        return found

    async def lvchange_refresh(self, vg: str, name: str) -> None:
        """The LV's table loaded again from the metadata and resumed."""
        await self._lvm(f"refreshing {vg}/{name}", "lvchange", "--refresh", f"{vg}/{name}")


def dm_name(vg: str, lv: str) -> str:
    """device-mapper's name of an LV: each part's '-' doubled, joined by '-'."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def _host_id_config(host_id: int) -> list[str]:
    """storaged.conf's host_id, which wins over lvmlocal.conf's (shared.py)."""
    return ["--config", f"local/host_id={host_id}"] if host_id else []
