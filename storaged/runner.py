"""The one place that runs external commands.

argv lists only (never a shell), LC_ALL=C so messages can be matched, a timeout
that kills the whole process group, and errors that carry the command's stderr.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from dataclasses import dataclass

from .errors import Failed

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class CommandFailed(Failed):
    """A command exited non-zero; `stderr` holds what it said."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str):
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        said = _useful_lines(stderr) or stdout.strip() or f"exit status {returncode}"
        super().__init__(f"{argv[0]} failed: {said}")


class CommandTimeout(Failed):
    def __init__(self, argv: list[str], timeout: float):
        self.argv = argv
        self.timeout = timeout
        super().__init__(f"{argv[0]} did not finish within {timeout:g} s and was killed")


# LVM prints these on every command in metadata-only mode or without backups;
# they say nothing about the failure at hand.
_NOISE = (
    "WARNING: Activation disabled",
    "WARNING: This metadata update is NOT backed up",
    "WARNING: Skipping zeroing",
    "WARNING: Logical volume",
    "File descriptor",
)


def _useful_lines(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    kept = [ln for ln in lines if not ln.startswith(_NOISE)] or lines
    # Once each: iscsiadm says "cannot make connection" at every one of its retries.
    return "; ".join(dict.fromkeys(kept))


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    # The daemon's own descriptors (bus socket, notify socket) are none of LVM's business.
    env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    # systemd's socket is the daemon's own: a helper that speaks sd_notify
    # (dbus-daemon does) would otherwise say READY=1 in the daemon's name.
    env.pop("NOTIFY_SOCKET", None)
    return env


async def run(argv: list[str], *, timeout: float = DEFAULT_TIMEOUT, input: bytes | None = None,
              check: bool = True) -> CommandResult:
    if not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty list of strings")
    log.debug("run: %s", argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_environment(),
            start_new_session=True,
            close_fds=True,
        )
    except FileNotFoundError:
        raise Failed(f"{argv[0]} is not installed (command not found)") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(proc)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except asyncio.TimeoutError:
            log.error("%s (pid %d) did not die after SIGKILL", argv[0], proc.pid)
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise CommandTimeout(argv, timeout) from None
    result = CommandResult(argv, proc.returncode, out.decode(errors="replace"),
                           err.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, result.stdout, result.stderr)
    return result


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


async def run_lines(argv: list[str], on_line, *, timeout: float = DEFAULT_TIMEOUT) -> CommandResult:
    """Like run(), calling on_line(line) for each line of output as it comes
    (progress reports of pvmove and the like)."""
    log.debug("run: %s", argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=_environment(), start_new_session=True)
    except FileNotFoundError:
        raise Failed(f"{argv[0]} is not installed (command not found)") from None
    out: list[str] = []

    async def pump():
        async for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            out.append(line)
            on_line(line)

    try:
        _, err = await asyncio.wait_for(asyncio.gather(pump(), proc.stderr.read()), timeout)
        await proc.wait()
    except (asyncio.TimeoutError, asyncio.CancelledError) as exc:
        _kill_group(proc)
        await proc.wait()
        if isinstance(exc, asyncio.CancelledError):
            raise
        raise CommandTimeout(argv, timeout) from None
    result = CommandResult(argv, proc.returncode, "\n".join(out), err.decode(errors="replace"))
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, result.stdout, result.stderr)
    return result


_PR_SET_PDEATHSIG = 1


async def spawn(argv: list[str], **kwargs) -> asyncio.subprocess.Process:
    """Start a long-running helper (the embedded mode's dbus-daemon) that ends
    with this process: the kernel sends it SIGTERM when its parent dies, however
    it dies (SIGKILL included)."""
    log.debug("spawn: %s", argv)
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it

    def die_with_parent() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return await asyncio.create_subprocess_exec(*argv, env=_environment(),
                                                start_new_session=True,
                                                preexec_fn=die_with_parent, **kwargs)
