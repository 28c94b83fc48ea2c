"""Jobs: anything that can take more than about a second runs as one.

The caller gets the Job at once; the work goes on in a task that reports its
progress (0..1) and ends with success or an error. A finished Job stays
readable for a while, then goes. No D-Bus here: the bus layer follows the
listener calls.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from ..errors import Cancelled, StoragedError

log = logging.getLogger(__name__)

KEEP_FINISHED = 300.0  # seconds a finished Job stays readable


@dataclass
class Job:
    """One long operation: progress 0..1, then completed, with an error or not."""

    id: int
    operation: str
    uid: int
    progress: float = 0.0
    completed: bool = False
    error: str = ""
    error_kind: str = ""  # the failure's kind (errors.py), exported as ErrorName
    task: asyncio.Task | None = field(default=None, repr=False)
    on_change: Callable[["Job", set[str]], None] | None = field(default=None, repr=False)
    cancelling: bool = field(default=False, repr=False)

    def set_progress(self, value: float) -> None:
        value = max(0.0, min(1.0, value))
        if value != self.progress and (abs(value - self.progress) >= 0.001 or value == 1.0):
            self.progress = value
            if self.on_change:
                self.on_change(self, {"Progress"})

    def cancel(self) -> bool:
        """Once: a Job that is stopping (a pvmove being aborted) is not
        cancelled again, which would kill what stops it."""
        if self.completed or not self.task:
            return False
        if not self.cancelling:
            self.cancelling = True
            self.task.cancel()
        return True


class Jobs:
    """The running and recently finished Jobs; tells a listener of each change."""

    def __init__(self, keep: float = KEEP_FINISHED):
        self.keep = keep
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self.listener = None  # job_added, job_changed, job_completed, job_removed

    def _tell(self, what: str, *args) -> None:
        fn = getattr(self.listener, what, None)
        if fn:
            fn(*args)

    def start(self, operation: str, uid: int, work: Callable[[Job], Awaitable[None]]) -> Job:
        job = Job(id=next(self._ids), operation=operation, uid=uid)
        job.on_change = lambda j, changed: self._tell("job_changed", j, changed)
        self.jobs[job.id] = job
        self._tell("job_added", job)
        job.task = asyncio.ensure_future(self._run(job, work))
        return job

    async def _run(self, job: Job, work) -> None:
        try:
            await work(job)
            job.set_progress(1.0)
        except asyncio.CancelledError:
            job.error, job.error_kind = f"{job.operation} was cancelled", Cancelled.kind
        except StoragedError as exc:
            job.error, job.error_kind = exc.message, exc.kind
        except Exception as exc:  # a Job must always end, and say how
            log.exception("job %d (%s) failed", job.id, job.operation)
            job.error, job.error_kind = f"internal error: {type(exc).__name__}", "Failed"
        job.completed = True
        self._tell("job_changed", job, {"Completed", "Error", "ErrorName"} if job.error else {"Completed"})
        self._tell("job_completed", job, not job.error, job.error or "done")
        asyncio.get_running_loop().call_later(self.keep, self._forget, job)

    def _forget(self, job: Job) -> None:
        if self.jobs.pop(job.id, None):
            self._tell("job_removed", job)

