"""Errors the engine raises. Each has a kind that the bus layer maps to
org.storaged.Storaged1.Error.<Kind>; the message says what was wrong."""


class StoragedError(Exception):
    """An error with a kind (the D-Bus error's last element) and a message for people."""

    kind = "Failed"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(StoragedError):
    """Bad input: the message names the field."""

    kind = "InvalidArgument"


class NotFound(StoragedError):
    """No such pool, volume, job or device."""

    kind = "NotFound"


class AlreadyExists(StoragedError):
    """The name, path or device is taken."""

    kind = "AlreadyExists"


class Busy(StoragedError):
    """Not now: the object is in use or in a state that forbids it."""

    kind = "Busy"


class NoSpace(StoragedError):
    """Not enough free space in the pool."""

    kind = "NoSpace"


class NotAuthorized(StoragedError):
    """The caller may not do this."""

    kind = "NotAuthorized"


class NotSupported(StoragedError):
    """Not on this host or for this object (e.g. no device-mapper)."""

    kind = "NotSupported"


class Degraded(StoragedError):
    """A source is out of reach, so the pool cannot do it."""

    kind = "Degraded"


class Cancelled(StoragedError):
    """A Job was cancelled."""

    kind = "Cancelled"


class Failed(StoragedError):
    """Anything else; for LVM, with LVM's own message."""

    kind = "Failed"
