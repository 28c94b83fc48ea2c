"""storaged.client: the public Python client library of storaged (async, plus a blocking wrapper).

    from storaged.client import connect
    async with connect() as storaged:
        pool = await storaged.lookup_pool("default")
        volume = await pool.allocate_volume("disk1", 8 << 30)

It imports dbus-fast and storaged.api only (no lxml, nothing of the daemon).
See docs/client.md.
"""
import importlib

# Imported when first used: the daemon imports storaged.client.transport
# alone, and should not pay for the rest at its start.
_FROM = {"blocking": None, "BUS_ENV": "connection", "Storaged": "connection",
         "bus_address": "connection", "connect": "connection", "describe_bus": "connection",
         "Event": "events", "Events": "events", "Job": "objects", "Object": "objects",
         "Pool": "objects", "Volume": "objects"}
_FROM.update(dict.fromkeys(("ERRORS", "AlreadyExists", "Busy", "Cancelled", "Degraded", "Error",
                            "Failed", "InvalidArgument", "NoSpace", "NotAuthorized", "NotFound",
                            "NotRunning", "NotSupported", "error_from"), "errors"))

__all__ = ["AlreadyExists", "BUS_ENV", "Busy", "Cancelled", "Degraded", "ERRORS", "Error", "Event",
           "Events", "Failed", "InvalidArgument", "Job", "NoSpace", "NotAuthorized", "NotFound",
           "NotRunning", "NotSupported", "Object", "Pool", "Storaged", "Volume", "blocking",
           "bus_address", "connect", "describe_bus", "error_from"]


def __getattr__(name: str):
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _FROM[name]
    value = importlib.import_module(f".{module or name}", __name__)
    if module:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
