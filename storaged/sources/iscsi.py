"""An iSCSI LUN: log in to the target, the PV is the LUN's /dev/disk/by-path name.

Every iscsiadm call goes through runner with a timeout: an unreachable portal
must leave the pool degraded (and retried by the engine), never hang the daemon.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import stat
import time

from ..errors import Degraded, Failed, InvalidArgument, StoragedError
from ..model.definitions import DeviceSource, IscsiSource
from ..system import runner
from ..system.host import systemd_running
from ..system.runner import CommandFailed, CommandTimeout
from .base import SourceBackend
from .device import DeviceBackend

ISCSIADM = "iscsiadm"
# The kernel's iSCSI-over-TCP initiator. iscsiadm loads it itself when it may;
# the unit's capability bounding set has no CAP_SYS_MODULE, so there it cannot.
TRANSPORT_MODULE = "iscsi_tcp"
BY_PATH = "/dev/disk/by-path"
# Bounded so that a dead portal at boot delays READY=1 by at most this much per source.
DISCOVERY_TIMEOUT = 20.0
LOGIN_TIMEOUT = 30.0
DEVICE_TIMEOUT = 30.0
# iscsiadm's exit statuses that mean "nothing to do" (see iscsiadm(8)).
ERR_SESS_EXISTS = 15
ERR_NO_OBJS_FOUND = 21
ERR_LOGIN_AUTH_FAILED = 24


def portal(src: IscsiSource) -> str:
    host = f"[{src.host}]" if ":" in src.host else src.host
    return f"{host}:{src.port}"


def by_path(src: IscsiSource) -> str:
    """The udev by-path link of the LUN (what udev's path_id names it)."""
    return f"{BY_PATH}/ip-{portal(src)}-iscsi-{src.target}-lun-{src.lun}"


def read_chap(path: str) -> tuple[str, str]:
    """(username, password) from a root-only file of `username=` and `password=` lines."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidArgument(f"CHAP file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"CHAP file {path} is not a regular file")
        if st.st_uid != 0:
            raise InvalidArgument(f"CHAP file {path} is not owned by root; chown root it")
        if st.st_mode & 0o077:
            raise InvalidArgument(f"CHAP file {path} is readable by others "
                                  f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        with os.fdopen(os.dup(fd), encoding="utf-8") as f:
            text = f.read(64 * 1024)
    finally:
        os.close(fd)
    values = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or key.strip() not in ("username", "password"):
            raise InvalidArgument(f"CHAP file {path}: expected 'username=...' and "
                                  f"'password=...' lines")
        values[key.strip()] = value.strip()
    if not values.get("username") or not values.get("password"):
        raise InvalidArgument(f"CHAP file {path} needs both a username= and a password= line")
    return values["username"], values["password"]


# open-iscsi's node database (idbm.c: NODE_CONFIG_DIR): one record file per
# target, portal and interface, TARGET/ADDRESS,PORT,TPGT/IFACE, of
# "name = value" lines that iscsiadm reads at --login and hands to iscsid over
# its root-only socket. Debian keeps it under /etc/iscsi, others under /var/lib.
NODE_DIRS = ("/etc/iscsi/nodes", "/var/lib/iscsi/nodes")
CHAP_KEYS = ("node.session.auth.authmethod", "node.session.auth.username",
             "node.session.auth.password")


def node_records(src: IscsiSource) -> list[str]:
    host = src.host.strip("[]")
    found = []
    for root in NODE_DIRS:
        found += glob.glob(os.path.join(glob.escape(os.path.join(root, src.target)),
                                        f"{glob.escape(host)},{src.port},*", "*"))
    return sorted(p for p in found if os.path.isfile(p))


def write_chap(src: IscsiSource, username: str, password: str) -> None:
    """Put CHAP credentials into the target's node records (mode 600), as
    `iscsiadm -o update` would, without the values on any command line."""
    records = node_records(src)
    if not records:
        raise Failed(f"discovery of {src.target} at {portal(src)} made no node record "
                     f"under {' or '.join(NODE_DIRS)}")
    values = dict(zip(CHAP_KEYS, ("CHAP", username, password)))
    for path in records:
        try:
            _write_record(path, values)
        except OSError as exc:
            raise Failed(f"cannot write the CHAP settings into {path}: {exc.strerror}") from None


def _write_record(path: str, values: dict[str, str]) -> None:
    """Rewrite one record with `values` in place of its own, atomically, mode 600."""
    with open(path, encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines()
                 if ln.partition("=")[0].strip() not in values]
    end = next((i for i, ln in enumerate(lines) if ln.startswith("# END RECORD")), len(lines))
    lines[end:end] = [f"{k} = {v}" for k, v in values.items()]
    tmp = f"{path}.storaged{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


async def _iscsiadm(args: list[str], timeout: float, ok: tuple[int, ...] = ()) -> None:
    try:
        await runner.run([ISCSIADM, *args], timeout=timeout)
    except CommandFailed as exc:
        if exc.returncode in ok:
            return
        raise
    except CommandTimeout:
        raise
    except Failed as exc:  # the command itself is missing
        raise Failed(f"iSCSI physical volumes need open-iscsi (iscsiadm): {exc.message}") from None


async def load_transport() -> None:
    """Load the iSCSI TCP transport unless it is loaded: through systemd's
    modprobe@.service when systemd runs (the module is loaded with systemd's
    rights, so the daemon needs no right to load modules at all), else with
    modprobe. Failing here is not an error: iscsiadm's own then says why."""
    if os.path.isdir(f"/sys/module/{TRANSPORT_MODULE}"):
        return
    if systemd_running():
        argv = ["systemctl", "start", f"modprobe@{TRANSPORT_MODULE}.service"]
    else:
        argv = ["modprobe", TRANSPORT_MODULE]
    try:
        await runner.run(argv, timeout=30)
    except StoragedError:
        pass


class IscsiBackend(SourceBackend):
    """An iSCSI LUN: discovery, login, the by-path device; logout at down()."""

    attaches = True
    retried = True  # a target that is not reachable yet may be later (late network)

    async def _login(self, src: IscsiSource) -> str:
        """Discovery, CHAP settings, login (idempotent); waits for the LUN's device."""
        where = f"iSCSI target {src.target} at {portal(src)}"
        node = ["-m", "node", "-T", src.target, "-p", portal(src)]
        try:
            # Read the credentials first: a bad file is the admin's to fix, no network needed.
            chap = read_chap(src.auth_file) if src.auth_file else None
            await load_transport()
            await _iscsiadm(["-m", "discovery", "-t", "sendtargets", "-p", portal(src)],
                            DISCOVERY_TIMEOUT)
            if chap:
                # Never on a command line (any local user reads /proc/*/cmdline):
                # written into the node record that discovery just made.
                write_chap(src, *chap)
            await _iscsiadm([*node, "--login"], LOGIN_TIMEOUT, ok=(ERR_SESS_EXISTS,))
        except InvalidArgument:
            raise
        except CommandFailed as exc:
            if exc.returncode != ERR_LOGIN_AUTH_FAILED:
                raise Degraded(f"{where} is not reachable: {exc.message}") from None
            # Reachable, but it said no: say which credentials, not "not reachable".
            said = (f"the CHAP credentials in {src.auth_file}" if src.auth_file
                    else "a login without CHAP credentials (add <auth type='chap' file='...'/>)")
            raise Degraded(f"{where} refused {said}: iSCSI login failed due to "
                           f"authorization failure") from None
        except StoragedError as exc:
            raise Degraded(f"{where} is not reachable: {exc.message}") from None
        link = by_path(src)
        deadline = time.monotonic() + DEVICE_TIMEOUT
        while not _is_block(link):
            if time.monotonic() > deadline:
                raise Degraded(f"{where}: logged in but {link} did not appear within "
                               f"{DEVICE_TIMEOUT:g} s (is LUN {src.lun} served?)")
            await asyncio.sleep(0.2)
        return os.path.realpath(link)

    async def create(self, src: IscsiSource) -> tuple[str, bool]:
        try:
            device = await self._login(src)
        except Degraded as exc:
            raise Failed(exc.message) from None
        try:
            # The same checks as a local disk: not mounted, no signature.
            await DeviceBackend().create(DeviceSource(path=device))
        except BaseException:
            await self.down(src)
            raise
        return device, False

    async def up(self, src: IscsiSource) -> str:
        # LVM reports the kernel name (/dev/sdX); the by-path link is how we find it.
        return await self._login(src)

    def device(self, src: IscsiSource) -> str | None:
        link = by_path(src)
        return os.path.realpath(link) if _is_block(link) else None

    def problem(self, src: IscsiSource) -> str | None:
        if _is_block(by_path(src)):
            return None
        return f"iSCSI LUN {src.lun} of {src.target} at {portal(src)} is not connected"

    async def down(self, src: IscsiSource) -> None:
        try:
            await _iscsiadm(["-m", "node", "-T", src.target, "-p", portal(src), "--logout"],
                            LOGIN_TIMEOUT, ok=(ERR_NO_OBJS_FOUND,))
        except CommandTimeout:
            raise
        except CommandFailed as exc:
            raise Failed(f"cannot log out of iSCSI target {src.target} at {portal(src)}: "
                         f"{runner._useful_lines(exc.stderr)}") from None
        except Failed:
            return  # no iscsiadm: nothing can be logged in


def _is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False
