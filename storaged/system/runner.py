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
import sys
import time
from dataclasses import dataclass

from ..errors import Failed

log = logging.getLogger(__name__)

# Seconds a command may take before it is killed: storaged.conf's command_timeout.
COMMAND_TIMEOUT = 120.0
# Seconds to wait for a killed command's process to be reaped.
KILL_WAIT = 5.0
# Seconds a command asked to stop (on_cancel) has to exit by itself before it is killed.
CANCEL_WAIT = 30.0


class Spent:
    """Commands run, and the wall time during which at least one was running
    (commands side by side count once), since start: the daemon's ready line
    says how much of its start-up was commands."""

    count = 0
    seconds = 0.0
    longest = (0.0, "")  # seconds, "program first-argument"
    _running = 0
    _since = 0.0

    @classmethod
    def begin(cls) -> None:
        if not cls._running:
            cls._since = time.monotonic()
        cls._running += 1

    @classmethod
    def end(cls) -> None:
        cls._running -= 1
        cls.count += 1
        if not cls._running:
            cls.seconds += time.monotonic() - cls._since


@dataclass
class CommandResult:
    """What a command printed and how it exited."""

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
    """A command outlived its timeout and was killed."""

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


async def run(argv: list[str], *, timeout: float = COMMAND_TIMEOUT, input: bytes | None = None,
              check: bool = True) -> CommandResult:
    """Run a command to its end; its output as text."""
    return await _execute(argv, timeout=timeout, input=input, on_line=None, check=check)


async def run_lines(argv: list[str], on_line, *, timeout: float = COMMAND_TIMEOUT,
                    on_cancel=None, cancel_wait: float = CANCEL_WAIT) -> CommandResult:
    """Like run(), calling on_line(line) for each line of output as it comes
    (progress reports of pvmove and the like).

    on_cancel: when the caller is cancelled, `await on_cancel()` first (the
    command's own way to be stopped, e.g. `pvmove --abort` beside a running
    pvmove), then up to cancel_wait seconds for the command to exit by itself;
    killed only if it does not (or if on_cancel fails, or the caller is
    cancelled again meanwhile). Without it, a cancel kills at once."""
    return await _execute(argv, timeout=timeout, input=None, on_line=on_line, check=True,
                          on_cancel=on_cancel, cancel_wait=cancel_wait)


async def _execute(argv: list[str], *, timeout: float, input: bytes | None, on_line,
                   check: bool, on_cancel=None, cancel_wait: float = CANCEL_WAIT) -> CommandResult:
    """The one spawn: its own process group, killed whole at the timeout or
    when the caller is cancelled (after on_cancel, if given, did not make it
    exit by itself)."""
    if not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError("argv must be a non-empty list of strings")
    log.debug("run: %s", argv)
    started = time.monotonic()
    Spent.begin()
    try:
        return await _execute_timed(argv, timeout=timeout, input=input, on_line=on_line,
                                    check=check, on_cancel=on_cancel, cancel_wait=cancel_wait)
    finally:
        Spent.end()
        took = time.monotonic() - started
        if took > Spent.longest[0]:
            Spent.longest = (took, " ".join(argv[:2]))
        log.debug("ran %s %s in %.0f ms", argv[0], argv[1] if len(argv) > 1 else "", took * 1000)


async def _execute_timed(argv: list[str], *, timeout: float, input: bytes | None, on_line,
                         check: bool, on_cancel, cancel_wait: float) -> CommandResult:
    spawning = asyncio.ensure_future(asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_environment(), start_new_session=True, close_fds=True))
    try:
        # Shielded: cancelled half-way, asyncio would kill only the command's
        # own pid and then wait for its pipes, which a child of it may hold
        # for as long as it runs (a Job's Cancel hung so).
        proc = await asyncio.shield(spawning)
    except FileNotFoundError:
        raise Failed(f"{argv[0]} is not installed (command not found)") from None
    except asyncio.CancelledError:
        try:
            proc = await spawning
        except Exception:
            raise asyncio.CancelledError from None
        await _kill(proc, argv)
        raise
    lines: list[str] = []

    async def by_line() -> tuple[bytes, bytes]:
        async def pump():
            async for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                on_line(line)
        _, err = await asyncio.gather(pump(), proc.stderr.read())
        await proc.wait()
        return "\n".join(lines).encode(), err

    # Its own task, shielded: a cancel of the caller leaves the output read
    # while on_cancel asks the command to stop.
    work = asyncio.ensure_future(by_line() if on_line else proc.communicate(input))
    try:
        out, err = await asyncio.wait_for(asyncio.shield(work), timeout)
    except asyncio.TimeoutError:
        work.cancel()
        await _kill(proc, argv)
        raise CommandTimeout(argv, timeout) from None
    except asyncio.CancelledError:
        try:
            if on_cancel is not None:
                await _stop(proc, work, argv, on_cancel, cancel_wait)
        finally:
            if not work.done():
                work.cancel()
                await _kill(proc, argv)
            elif not work.cancelled():
                work.exception()  # retrieved: the caller is cancelled whatever it was
        raise
    result = CommandResult(argv, proc.returncode, out.decode(errors="replace"),
                           err.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, result.stdout, result.stderr)
    return result


async def _stop(proc: asyncio.subprocess.Process, work: asyncio.Future, argv: list[str],
                on_cancel, wait: float) -> None:
    """on_cancel(), then up to `wait` seconds for the command to end by itself
    (its output read to the end). Returns either way: the caller kills what is
    left."""
    log.info("%s (pid %d): cancelled, asking it to stop", argv[0], proc.pid)
    try:
        await on_cancel()
    except Exception as exc:  # noqa: BLE001 - any failure: the kill follows
        log.error("%s (pid %d): asking it to stop failed (%s); killing it", argv[0], proc.pid,
                  getattr(exc, "message", None) or exc)
        return
    try:
        await asyncio.wait_for(asyncio.shield(work), wait)
    except asyncio.TimeoutError:
        log.error("%s (pid %d) still runs %g s after it was asked to stop; killing it",
                  argv[0], proc.pid, wait)
    except Exception:  # noqa: BLE001 - its output could not be read: it ended
        pass
    else:
        log.info("%s (pid %d) stopped by itself, exit status %s", argv[0], proc.pid,
                 proc.returncode)


async def _kill(proc: asyncio.subprocess.Process, argv: list[str]) -> None:
    """SIGKILL the command's whole process group, and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        await asyncio.wait_for(proc.wait(), KILL_WAIT)
    except asyncio.TimeoutError:
        log.error("%s (pid %d) did not die after SIGKILL", argv[0], proc.pid)


def watch_children_by_pidfd() -> None:
    """Learn of each command's exit through a pidfd on the event loop. Python
    3.11's default watcher starts a thread per command and waits for it to
    run: 1-2 ms of every command's time on a busy host (3.12 uses pidfds
    itself). Called once, from the running loop."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel before 5.3, or a seccomp filter without it
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    asyncio.get_event_loop_policy().set_child_watcher(watcher)


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
