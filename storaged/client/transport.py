"""A dbus-fast connection that survives bursts; the daemon's and every client's."""
from dbus_fast.aio import MessageBus

from .marshal_fix import fix_writer


class _PatientSocket:
    """dbus-fast treats a socket write that would block (a full socket buffer,
    e.g. a burst of signals) as a broken connection and disconnects. Reporting
    "nothing written" instead makes its writer wait for the socket to be
    writable again, which is what it already does after a partial write."""

    def __init__(self, sock):
        self._sock = sock

    def send(self, data):
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0

    def sendmsg(self, buffers, ancdata=()):
        try:
            return self._sock.sendmsg(buffers, ancdata)
        except (BlockingIOError, InterruptedError):
            return 0

    def __getattr__(self, name):
        return getattr(self._sock, name)


class PatientMessageBus(MessageBus):
    """A MessageBus whose writes wait for the socket instead of disconnecting,
    and that writes correct string lengths on Debian 12's dbus-fast 1.84."""

    async def connect(self):
        await super().connect()
        self._writer.sock = _PatientSocket(self._writer.sock)
        fix_writer(self._writer)  # dbus-fast 1.84's non-ASCII strings
        return self
