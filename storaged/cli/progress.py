"""A job's progress on the terminal, and waiting for a job the way storagectl does."""
from __future__ import annotations

import argparse
import asyncio
import sys

from .. import client
from .render import job_number
from .session import CliError, Session


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


async def run_job(c: Session, a: argparse.Namespace, path: str, iface: str, member: str,
                  signature: str = "", body=()) -> bool:
    """Start a Job; wait for it unless --no-wait. True when it is done. A failed
    job exits with its own error kind's status (Failed from a storaged without ErrorName)."""
    return await follow_job(c, a, await c.call(path, iface, member, signature, body))


async def follow_job(c: Session, a: argparse.Namespace, path: str) -> bool:
    """Wait for the Job at `path` unless --no-wait, as run_job does."""
    job = c.storaged.job(path)
    if a.no_wait:
        print(job.object_path)
        return False
    progress = Progress(c.verb, sys.stderr.isatty() and not a.no_progress)
    try:
        await job.wait(progress)
    except client.NotRunning:
        progress.end()
        raise CliError("Failed", f"storaged went away before job {job.number} finished",
                       gone=True) from None
    except client.Error as exc:
        progress.end()
        if exc.name.startswith("org.freedesktop.DBus.Error."):  # reading the job, not the job
            raise c.error(exc, job.object_path, "GetAll") from None
        raise CliError(exc.kind, exc.message or f"job {job.number} failed") from None
    except asyncio.CancelledError:  # Ctrl-C: the job itself goes on in the daemon
        progress.end()
        n = job_number(job.object_path)
        print(f"storagectl: job {n} goes on; 'storagectl job-cancel {n}' stops it", file=sys.stderr)
        raise
    progress.end()
    return True
