"""What every method call goes through: who is calling, may they, and turning
engine errors into named D-Bus errors. No Python exception reaches a client."""
import contextvars
import functools
import logging

from dbus_fast import DBusError, Message, MessageType

from ..errors import NotAuthorized, StoragedError
from .names import ERROR_PREFIX

log = logging.getLogger("storaged.bus")

# The message being handled. Set by a bus message handler that runs before
# dbus-fast dispatches the call, so the handler's task inherits it.
current_message: contextvars.ContextVar[Message | None] = contextvars.ContextVar(
    "current_message", default=None)


def remember_call(msg: Message) -> bool:
    if msg.message_type == MessageType.METHOD_CALL:
        current_message.set(msg)
    return False  # let dbus-fast dispatch it


class Callers:
    """The Unix uid behind a unique bus name, asked of the bus once per name."""

    def __init__(self, bus):
        self.bus = bus
        self._uids: dict[str, int] = {}
        self.in_flight = 0

    async def uid(self, sender: str) -> int:
        uid = self._uids.get(sender)
        if uid is None:
            reply = await self.bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="GetConnectionUnixUser",
                signature="s", body=[sender]))
            if reply.message_type != MessageType.METHOD_RETURN:
                raise NotAuthorized(f"cannot tell who {sender} is")
            uid = reply.body[0]
            if len(self._uids) > 10000:
                self._uids.clear()  # unique names are never reused; this only bounds memory
            self._uids[sender] = uid
        return uid

    async def caller_uid(self) -> int:
        msg = current_message.get()
        if msg is None or not msg.sender:
            raise NotAuthorized("the caller is unknown")
        return await self.uid(msg.sender)

    async def authorize(self, action: str) -> int:
        uid = await self.caller_uid()
        if uid != 0:
            raise NotAuthorized(f"{action} needs root (uid {uid} is not allowed to change storage)")
        return uid


def dbus_error(exc: StoragedError) -> DBusError:
    return DBusError(f"{ERROR_PREFIX}.{exc.kind}", exc.message)


def call(action: str | None = None):
    """Wrap an async D-Bus method: authorize mutating calls (action names the
    polkit action), log them, and map every failure to a named error."""
    def wrap(fn):
        @functools.wraps(fn)
        async def handler(self, *args):
            callers: Callers = self.callers
            callers.in_flight += 1
            try:
                if action:
                    uid = await callers.authorize(action)
                    log.info("uid %d calls %s%r", uid, fn.__name__, args,
                             extra={"CALLER_UID": uid, "METHOD": fn.__name__,
                                    "ARGUMENTS": repr(args)})
                return await fn(self, *args)
            except StoragedError as exc:
                raise dbus_error(exc) from None
            except DBusError:
                raise
            except Exception as exc:
                log.exception("unexpected failure in %s", fn.__name__)
                raise DBusError(f"{ERROR_PREFIX}.Failed",
                                f"internal error in {fn.__name__}: {type(exc).__name__}") from None
            finally:
                callers.in_flight -= 1
        return handler
    return wrap
