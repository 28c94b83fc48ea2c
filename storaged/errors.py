"""Errors the engine raises. Each has a kind that the bus layer maps to
org.storaged.Storaged1.Error.<Kind>; the message says what was wrong."""


class StoragedError(Exception):
    kind = "Failed"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(StoragedError):
    kind = "InvalidArgument"


class NotFound(StoragedError):
    kind = "NotFound"


class AlreadyExists(StoragedError):
    kind = "AlreadyExists"


class Busy(StoragedError):
    kind = "Busy"


class NoSpace(StoragedError):
    kind = "NoSpace"


class NotAuthorized(StoragedError):
    kind = "NotAuthorized"


class NotSupported(StoragedError):
    kind = "NotSupported"


class Degraded(StoragedError):
    kind = "Degraded"


class Cancelled(StoragedError):
    kind = "Cancelled"


class Failed(StoragedError):
    kind = "Failed"


ALL_KINDS = [c.kind for c in (InvalidArgument, NotFound, AlreadyExists, Busy, NoSpace,
                              NotAuthorized, NotSupported, Degraded, Cancelled, Failed)]
