"""The Job objects: progress and outcome of a long operation, and Cancel."""
# No `from __future__ import annotations`: dbus-fast reads the D-Bus
# signatures from the annotations as written.
from dbus_fast.service import method, signal

from ..api import JOB_IFACE, JOB_PROPERTIES
from ..errors import InvalidArgument, NotAuthorized
from .calls import Callers, call
from .properties import ModelInterface, exports


@exports(JOB_PROPERTIES)
class JobInterface(ModelInterface):
    """org.storaged.Storaged1.Job at /org/storaged/Storaged1/jobs/N."""

    def __init__(self, callers: Callers, job):
        super().__init__(JOB_IFACE)
        self.callers = callers
        self.job = job

    def model(self):
        return self.job

    @method()
    @call()
    async def Cancel(self):
        uid = await self.callers.caller_uid()
        if uid not in (0, self.job.uid):
            raise NotAuthorized(f"only root or uid {self.job.uid}, who started it, may cancel this job")
        if not self.job.cancel():
            raise InvalidArgument(f"job {self.job.id} has already completed")

    @signal()
    def Completed(self, success, message) -> "bs":
        return [success, message]
