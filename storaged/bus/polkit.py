"""Asking polkit whether a caller may do something.

The subject is the caller's unique bus name ("system-bus-name"), so polkit
itself looks up the process, its session and its user; nothing the caller
says about itself is trusted. The question is asked asynchronously with a
timeout, so the bus keeps being served while polkit (or a user typing a
password) takes its time. Nothing is cached here: polkit's own
auth_admin_keep does the keeping, and a revoked authorization takes effect at
the next call.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os

from dbus_fast import Message, MessageType, Variant

log = logging.getLogger("storaged.bus")

POLKIT_NAME = "org.freedesktop.PolicyKit1"
POLKIT_PATH = "/org/freedesktop/PolicyKit1/Authority"
POLKIT_IFACE = "org.freedesktop.PolicyKit1.Authority"
ALLOW_USER_INTERACTION = 1

# Without interaction polkit answers from its rules at once; with it, a person
# may be typing a password in an authentication agent.
TIMEOUT = 25.0
INTERACTIVE_TIMEOUT = 120.0

_cancel_ids = itertools.count(1)


class Unavailable(Exception):
    """polkit is not on this bus, or did not answer."""


async def check_authorization(bus, sender: str, action: str, *, interactive: bool,
                              timeout: float | None = None) -> bool:
    """True if polkit authorizes `sender` for `action`; raises Unavailable when
    there is no polkit to ask (the caller then refuses)."""
    cancel_id = f"storaged-{os.getpid()}-{next(_cancel_ids)}"
    msg = Message(
        destination=POLKIT_NAME, path=POLKIT_PATH, interface=POLKIT_IFACE,
        member="CheckAuthorization", signature="(sa{sv})sa{ss}us",
        body=[["system-bus-name", {"name": Variant("s", sender)}], action, {},
              ALLOW_USER_INTERACTION if interactive else 0, cancel_id])
    if timeout is None:
        timeout = INTERACTIVE_TIMEOUT if interactive else TIMEOUT
    try:
        reply = await asyncio.wait_for(bus.call(msg), timeout)
    except asyncio.TimeoutError:
        _cancel(bus, cancel_id)
        raise Unavailable(f"polkit did not answer within {timeout:.0f} s") from None
    except Exception as exc:  # the connection itself failed
        raise Unavailable(f"cannot ask polkit: {exc}") from None
    if reply.message_type == MessageType.ERROR:
        raise Unavailable(f"polkit: {reply.error_name}"
                          f"{': ' + str(reply.body[0]) if reply.body else ''}")
    try:
        is_authorized, _is_challenge, _details = reply.body[0]
    except (IndexError, TypeError, ValueError):
        raise Unavailable("polkit sent an answer storaged does not understand") from None
    return bool(is_authorized)


def _cancel(bus, cancel_id: str) -> None:
    """Withdraw a question nobody waits for any more (best effort, no reply)."""
    try:
        bus.send(Message(destination=POLKIT_NAME, path=POLKIT_PATH, interface=POLKIT_IFACE,
                         member="CancelCheckAuthorization", signature="s", body=[cancel_id]))
    except Exception:  # pragma: no cover - the bus is going away anyway
        log.debug("could not cancel polkit check %s", cancel_id)
