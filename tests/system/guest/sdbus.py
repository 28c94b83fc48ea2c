#!/usr/bin/python3
"""storaged VM lab, guest side: what busctl cannot do, with dbus-fast (in the image).

  sdbus.py call PATH INTERFACE METHOD SIGNATURE JSON_ARGS
      Calls storaged. JSON_ARGS is a JSON list; an a{sv} argument is a JSON
      object of {"key": ["signature", value]}. Prints the reply's body as JSON
      (status 0), or on a D-Bus error two lines, the error name and its message
      (status 3): busctl prints the message only, and the checks need the name.

  sdbus.py names POOL_PATH
      The Name of every Volume object of the pool (GetManagedObjects), one a line, sorted.

  sdbus.py watch BARRIER READY POOL VOLUME SECONDS
      Creates the file READY once polling, then every 50 ms: notes when the
      file BARRIER (the other host's) first exists, and calls
      LookupVolume(POOL, VOLUME) until it answers. Prints
      "seen_ms=N appear_ms=M" (milliseconds of this host's monotonic clock
      since the start; seen_ms is -1 if the barrier never came). Status 0 if
      the volume appeared within SECONDS, else 1.
"""
import asyncio
import json
import os
import sys
import time

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

BUS = "org.storaged.Storaged1"
ROOT = "/org/storaged/Storaged1"
MANAGER = ROOT + "/Manager"
IF_MANAGER = "org.storaged.Storaged1.Manager"
IF_VOLUME = "org.storaged.Storaged1.Volume"
TIMEOUT = 120


def plain(value):
    if isinstance(value, Variant):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def convert(arg):
    # a{sv}: {"key": ["sig", value]}
    if isinstance(arg, dict):
        return {k: Variant(v[0], v[1]) for k, v in arg.items()}
    return arg


async def call(bus, path, iface, method, signature="", body=()):
    msg = Message(destination=BUS, path=path, interface=iface, member=method,
                  signature=signature, body=list(body))
    return await asyncio.wait_for(bus.call(msg), TIMEOUT)


async def main(argv):
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    cmd = argv[0]
    if cmd == "call":
        path, iface, method, signature, args = argv[1:6]
        reply = await call(bus, path, iface, method, signature,
                           [convert(a) for a in json.loads(args)])
        if reply.message_type == MessageType.ERROR:
            print(reply.error_name)
            print(reply.body[0] if reply.body else "")
            return 3
        print(json.dumps(plain(reply.body)))
        return 0
    if cmd == "names":
        pool = argv[1]
        reply = await call(bus, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        if reply.message_type == MessageType.ERROR:
            print(f"GetManagedObjects: {reply.error_name}: {reply.body}", file=sys.stderr)
            return 3
        names = sorted(plain(ifaces[IF_VOLUME]["Name"])
                       for path, ifaces in reply.body[0].items()
                       if IF_VOLUME in ifaces and plain(ifaces[IF_VOLUME]["Pool"]) == pool)
        for name in names:
            print(name)
        return 0
    if cmd == "watch":
        barrier, ready, pool, volume, limit = argv[1], argv[2], argv[3], argv[4], float(argv[5])
        start = time.monotonic()
        seen = appear = None
        with open(ready, "w") as f:
            f.write("watching\n")
        while time.monotonic() - start < limit:
            tick = time.monotonic()
            if seen is None and os.path.exists(barrier):
                seen = time.monotonic()
            reply = await call(bus, MANAGER, IF_MANAGER, "LookupVolume", "ss", [pool, volume])
            if reply.message_type != MessageType.ERROR:
                appear = time.monotonic()
                if seen is None and os.path.exists(barrier):
                    seen = appear
                break
            await asyncio.sleep(max(0.0, 0.05 - (time.monotonic() - tick)))
        ms = lambda t: -1 if t is None else int((t - start) * 1000)  # noqa: E731
        print(f"seen_ms={ms(seen)} appear_ms={ms(appear)}")
        return 0 if appear is not None else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
