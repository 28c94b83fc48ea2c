"""What every method call goes through: who is calling, may they, and turning
engine errors into named D-Bus errors. No Python exception reaches a client."""
import contextvars
import functools
import logging

from dbus_fast import DBusError, Message, MessageFlag, MessageType, Variant

from ..api import ERROR_PREFIX
from ..errors import InvalidArgument, NotAuthorized, StoragedError
from . import polkit

log = logging.getLogger("storaged.bus")

# The polkit actions a mutating call needs (dbus/org.storaged.Storaged1.policy).
MANAGE_POOLS = "org.storaged.Storaged1.manage-pools"
MANAGE_VOLUMES = "org.storaged.Storaged1.manage-volumes"
# Reading or writing a volume's block device (Volume.Open), as udisks2's OpenDevice.
ACCESS_VOLUMES = "org.storaged.Storaged1.access-volumes"

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

    def __init__(self, bus, polkit_timeout: float = polkit.TIMEOUT):
        self.bus = bus
        self.polkit_timeout = polkit_timeout
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
        """Root may; anyone else only with polkit's yes for `action`. Without
        polkit on the bus, or when it does not answer, the answer is no."""
        uid = await self.caller_uid()
        if uid == 0:
            return uid
        msg = current_message.get()
        interactive = bool(msg.flags & MessageFlag.ALLOW_INTERACTIVE_AUTHORIZATION)
        try:
            allowed = await polkit.check_authorization(
                self.bus, msg.sender, action, interactive=interactive,
                timeout=None if interactive else self.polkit_timeout)
        except polkit.Unavailable as exc:
            log.debug("no polkit answer for uid %d (%s): %s", uid, action, exc)
            raise NotAuthorized(f"{action} needs root or a polkit authorization, and polkit "
                                f"could not be asked (uid {uid})") from None
        if not allowed:
            raise NotAuthorized(f"uid {uid} is not authorized for {action}"
                                + ("" if interactive else
                                   " (the call did not allow interactive authentication)"))
        return uid


def journal_fields(uid: int, method: str, args: tuple, action: str) -> dict:
    """Structured journal fields (JournalHandler passes upper-case extras on)."""
    return {"STORAGED_CALLER_UID": uid, "STORAGED_METHOD": method,
            "STORAGED_ARGS": _short(args), "STORAGED_ACTION": action}


def _text(value) -> str:
    """Arguments as D-Bus people read them (GVariant's text form): a Variant
    is <value>, not a Python repr."""
    if isinstance(value, Variant):
        return f"<{_text(value.value)}>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _short(args: tuple, limit: int = 4096) -> str:
    text = "(" + ", ".join(_text(a) for a in args) + ")"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


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
                    try:
                        uid = await callers.authorize(action)
                    except NotAuthorized:
                        msg = current_message.get()
                        who = callers._uids.get(msg.sender, -1) if msg and msg.sender else -1
                        log.warning("uid %d denied %s%s", who, fn.__name__, _short(args),
                                    extra=journal_fields(who, fn.__name__, args, action))
                        raise
                    log.info("uid %d calls %s%s", uid, fn.__name__, _short(args),
                             extra=journal_fields(uid, fn.__name__, args, action))
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
        handler.storaged_action = action  # which polkit action, None for a read
        return handler
    return wrap


def options_of(options, allowed: dict[str, str]) -> dict:
    """An a{sv} of options as plain values, each of the type allowed for it."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidArgument(f"unknown option(s): {', '.join(unknown)}")
    out = {}
    for key, variant in options.items():
        if variant.signature != allowed[key]:
            raise InvalidArgument(f"option {key} must be of type {allowed[key]!r}, "
                                  f"not {variant.signature!r}")
        out[key] = variant.value
    return out


def no_options(options) -> None:
    options_of(options, {})
