"""storaged.client: the public Python client library of storaged (async, plus a blocking wrapper).

    from storaged.client import connect
    async with connect() as storaged:
        pool = await storaged.lookup_pool("default")
        volume = await pool.allocate_volume("disk1", 8 << 30)

It imports dbus-fast and storaged.api only (no lxml, nothing of the daemon).
See docs/client.md.
"""
from . import blocking
from .connection import BUS_ENV, Storaged, bus_address, connect, describe_bus
from .errors import (ERRORS, AlreadyExists, Busy, Cancelled, Degraded, Error, Failed, InvalidArgument,
                     NoSpace, NotAuthorized, NotFound, NotRunning, NotSupported, error_from)
from .events import Event, Events
from .objects import Job, Object, Pool, Volume

__all__ = ["AlreadyExists", "BUS_ENV", "Busy", "Cancelled", "Degraded", "ERRORS", "Error", "Event",
           "Events", "Failed", "InvalidArgument", "Job", "NoSpace", "NotAuthorized", "NotFound",
           "NotRunning", "NotSupported", "Object", "Pool", "Storaged", "Volume", "blocking",
           "bus_address", "connect", "describe_bus", "error_from"]
