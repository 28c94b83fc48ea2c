"""The client's exceptions: one per error kind of the API, all under Error."""
from __future__ import annotations

from ..api import ERROR_KINDS, ERROR_PREFIX

DBUS_ERROR = "org.freedesktop.DBus.Error."


class Error(Exception):
    """A failure storaged (or the bus on its behalf) answered.

    `kind` is one of storaged.api.ERROR_KINDS, `name` the D-Bus error name as
    received (org.storaged.Storaged1.Error.<kind>, or the bus's own, such as
    org.freedesktop.DBus.Error.AccessDenied), `message` the text that came with it.
    """

    kind = "Failed"

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.message = message
        self.name = name or f"{ERROR_PREFIX}.{self.kind}"


class InvalidArgument(Error):
    """An argument was malformed or out of range (also the bus's InvalidArgs)."""
    kind = "InvalidArgument"


class NotFound(Error):
    """No such pool, volume, physical volume or job (or it went meanwhile)."""
    kind = "NotFound"


class AlreadyExists(Error):
    """The name, volume group, file or device is taken."""
    kind = "AlreadyExists"


class Busy(Error):
    """The object is in use or in the wrong state for this (a started pool, an open volume)."""
    kind = "Busy"


class NoSpace(Error):
    """Not enough free space in the pool or its filesystem."""
    kind = "NoSpace"


class NotAuthorized(Error):
    """The caller may not do this (storaged's check, polkit, or the bus policy)."""
    kind = "NotAuthorized"


class NotSupported(Error):
    """This storaged cannot do that (yet), or not with this kind of pool."""
    kind = "NotSupported"


class Degraded(Error):
    """The pool is degraded: a physical volume is missing."""
    kind = "Degraded"


class Cancelled(Error):
    """The job was cancelled."""
    kind = "Cancelled"


class Failed(Error):
    """Anything else: a command failed, a timeout, an internal error."""
    kind = "Failed"


class NotRunning(Failed):
    """storaged is not on the bus: not running, stopped meanwhile, or could not be started."""


ERRORS: dict[str, type[Error]] = {cls.kind: cls for cls in (
    InvalidArgument, NotFound, AlreadyExists, Busy, NoSpace, NotAuthorized, NotSupported,
    Degraded, Cancelled, Failed)}
assert set(ERRORS) == set(ERROR_KINDS), "one exception per ERROR_KIND"

# The bus's own errors, as the kind they mean for a caller of storaged.
_BUS_ERRORS = {
    "AccessDenied": NotAuthorized, "InteractiveAuthorizationRequired": NotAuthorized,
    "ServiceUnknown": NotRunning, "NameHasNoOwner": NotRunning, "NoReply": NotRunning,
    "Disconnected": NotRunning,
    "UnknownObject": NotFound, "UnknownMethod": NotFound, "UnknownInterface": NotFound,
    "UnknownProperty": NotFound, "InvalidArgs": InvalidArgument, "NotSupported": NotSupported,
}


def error_from(name: str, message: str) -> Error:
    """The exception for a D-Bus error reply."""
    if name.startswith(ERROR_PREFIX + "."):
        return ERRORS.get(name[len(ERROR_PREFIX) + 1:], Failed)(message, name)
    short = name.removeprefix(DBUS_ERROR)
    if short.startswith("Spawn."):
        return NotRunning(message, name)
    return _BUS_ERRORS.get(short, Failed)(message, name)


def error_named(name: str, message: str) -> Error:
    """A job's failure, from its ErrorName property (Failed when there is none)."""
    return error_from(name, message) if name else Failed(message)
