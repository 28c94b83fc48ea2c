"""storaged: asyncio main. Config, start the pools, export them, own the name,
tell systemd we are ready; on SIGTERM let calls finish and leave."""
from __future__ import annotations

import argparse
import asyncio
import configparser
import importlib
import logging
import os
import signal
import sys

from . import __version__, instance
from .api import BUS_NAME
from .errors import InvalidArgument, StoragedError
from .model.sizes import parse_size
from .notify import notify, setup_logging
from .engine import Engine, Settings
from .engine.settings import MAX_HOST_ID
from .engine.watch import Watcher
from .system.host import process_age
from .system.runner import Spent, watch_children_by_pidfd

log = logging.getLogger("storaged")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="storaged", description="Virtual storage pools on D-Bus.")
    p.add_argument("--bus", default="system",
                   help="system, session, or a D-Bus address such as unix:path=/run/x/bus")
    p.add_argument("--config-dir", default="/etc/storaged", metavar="DIR",
                   help="pool definitions (pools/NAME.xml) and storaged.conf "
                        "(default %(default)s)")
    p.add_argument("--state-dir", default="/var/lib/storaged", metavar="DIR",
                   help="what the pools created (records) and the default pool's image "
                        "(default %(default)s)")
    p.add_argument("--run-dir", default="/run/storaged", metavar="DIR",
                   help="runtime files: NFS mount points (default %(default)s)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--default-pool-size", help="size of the default pool's file (default 10G)")
    g.add_argument("--no-default-pool", action="store_true",
                   help="do not create the default pool on a host without pools")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error"])
    p.add_argument("--embedded", metavar="DIR",
                   help="run self-contained: a private bus and all state under DIR")
    p.add_argument("--version", action="version", version=f"storaged {__version__}")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings(config_dir=args.config_dir, state_dir=args.state_dir, run_dir=args.run_dir)
    conf = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    conf.read(os.path.join(args.config_dir, "storaged.conf"))
    if conf.has_option("daemon", "default_pool_size"):
        s.default_pool_size = parse_size(conf.get("daemon", "default_pool_size"),
                                         field="storaged.conf default_pool_size")
    if conf.has_option("daemon", "command_timeout"):
        s.command_timeout = conf.getfloat("daemon", "command_timeout")
    if conf.has_option("daemon", "default_pool_volume_group"):
        s.default_pool_vg = conf.get("daemon", "default_pool_volume_group")
    if conf.has_option("daemon", "libvirt_config_dir"):
        s.libvirt_config_dir = conf.get("daemon", "libvirt_config_dir")
    if conf.has_option("daemon", "default_pool"):
        s.default_pool = conf.getboolean("daemon", "default_pool")
    if conf.has_option("daemon", "source_retry_interval"):
        s.source_retry_interval = conf.getfloat("daemon", "source_retry_interval")
        if s.source_retry_interval <= 0:
            raise InvalidArgument("storaged.conf source_retry_interval must be a positive number of seconds")
    if conf.has_option("daemon", "polkit_timeout"):
        s.polkit_timeout = conf.getfloat("daemon", "polkit_timeout")
        if s.polkit_timeout <= 0:
            raise InvalidArgument("storaged.conf polkit_timeout must be a positive number of seconds")
    if conf.has_option("daemon", "host_id"):
        text = conf.get("daemon", "host_id").strip()
        if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_HOST_ID:
            raise InvalidArgument(f"storaged.conf host_id: {text!r} must be a whole number from 1 "
                                  f"to {MAX_HOST_ID}, different on every host sharing a pool")
        s.host_id = int(text)
    if args.default_pool_size:
        s.default_pool_size = parse_size(args.default_pool_size, field="--default-pool-size")
    if args.no_default_pool:
        s.default_pool = False
    return s


# The bus layer (dbus-fast and storaged.bus): imported in a thread while the
# pools start, as the boot mostly waits for LVM (see _serve).
BUS_LAYER = "storaged.bus.service"


async def connect(bus: str):
    from dbus_fast import BusType

    from .bus.service import StoragedBus
    if bus == "system":
        return await StoragedBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True).connect()
    if bus == "session":
        return await StoragedBus(bus_type=BusType.SESSION, negotiate_unix_fd=True).connect()
    return await StoragedBus(bus_address=bus, negotiate_unix_fd=True).connect()


async def serve(args: argparse.Namespace) -> int:
    watch_children_by_pidfd()
    emb = None
    if args.embedded:
        from . import embedded  # the self-contained mode only
        emb = await embedded.start(args.embedded, lambda m: print(f"storaged: {m}", flush=True))
        args.bus = emb.address
        args.config_dir, args.state_dir, args.run_dir = emb.config_dir, emb.state_dir, emb.run_dir
    try:
        return await _serve(args)
    finally:
        if emb:
            await emb.stop()


async def _serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    os.makedirs(settings.run_dir, mode=0o755, exist_ok=True)
    # Before anything is touched: a second daemon on the same directories
    # would recover the first one's intents under its feet.
    for directory in (settings.config_dir, settings.state_dir):
        instance.hold(directory)
    loop = asyncio.get_running_loop()
    bus_layer = loop.run_in_executor(None, importlib.import_module, BUS_LAYER)
    engine = Engine(settings)

    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    # Pools first: READY=1 means the host's storage is back, not just that we run.
    booting = asyncio.ensure_future(engine.boot())
    try:
        await bus_layer
        bus = await connect(args.bus)
    except BaseException:
        await asyncio.shield(booting)  # never left half started
        raise
    from .bus.service import BusService
    service = BusService(bus, engine)  # what the boot made so far, then follows it
    await booting
    for pool in engine.pools.values():
        if pool.state not in ("running", "inactive"):
            log.warning("pool %s is %s: %s", pool.name, pool.state, pool.reason)
    if not engine.activation:
        log.info("LVM activation is off (no device-mapper or activation = 0): "
                 "metadata-only mode, volumes get no device nodes")

    watcher = Watcher(engine)
    watcher.start()

    from dbus_fast.constants import NameFlag, RequestNameReply
    bus.announcing = True  # objects that come from now on are signalled (StoragedBus)
    reply = await bus.request_name(BUS_NAME, NameFlag.DO_NOT_QUEUE)
    if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
        log.error("cannot own %s on the bus (%s): is another storaged running?", BUS_NAME, reply.name)
        bus.disconnect()
        return 1
    notify(f"READY=1\nSTATUS=serving {len(engine.pools)} pool(s)")
    log.info("storaged %s ready: %d pool(s), %.2f s after exec (interpreter and imports "
             "%.2f s, %d command(s) %.2f s, the longest %s %.2f s)", __version__,
             len(engine.pools), process_age(), args.imported, Spent.count, Spent.seconds,
             Spent.longest[1] or "none", Spent.longest[0])
    network_pools = asyncio.ensure_future(engine.start_network_pools())

    disconnected = asyncio.ensure_future(bus.wait_for_disconnect())
    stop_wait = asyncio.ensure_future(stopping.wait())
    await asyncio.wait([disconnected, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    if disconnected.done():
        # Without the bus we serve nobody; exit non-zero so systemd restarts us.
        # (The reason read here: an unread one is logged as a "never retrieved" traceback.)
        why = None if disconnected.cancelled() else disconnected.exception()
        log.error("lost the connection to the bus%s", f" ({type(why).__name__})" if why else "")
        return 2
    network_pools.cancel()
    watcher.stop()
    engine.close()
    notify("STOPPING=1")
    log.info("stopping: letting %d call(s) in flight finish", service.callers.in_flight)
    try:
        await bus.release_name(BUS_NAME)
    except Exception as exc:  # the bus may already be going away
        log.warning("releasing %s: %s", BUS_NAME, exc)
    for _ in range(600):
        if service.callers.in_flight == 0:
            break
        await asyncio.sleep(0.1)
    if args.embedded:
        for pool in list(engine.pools.values()):
            try:
                await engine.stop(pool)
            except StoragedError as exc:
                log.warning("embedded: cannot stop pool %s: %s", pool.name, exc.message)
    bus.disconnect()
    stop_wait.cancel()
    disconnected.cancel()
    return 0


def main(argv: list[str] | None = None) -> None:
    imported = process_age()
    args = parse_args(argv)
    args.imported = imported
    setup_logging(args.log_level)
    try:
        code = asyncio.run(serve(args))
    except StoragedError as exc:
        log.error("%s", exc.message)
        code = 1
    except (ValueError, configparser.Error) as exc:
        log.error("%s/storaged.conf: %s", args.config_dir, exc)
        code = 1
    except (ConnectionError, FileNotFoundError) as exc:
        log.error("cannot connect to the bus %s: %s", args.bus, exc, exc_info=args.log_level == "debug")
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
