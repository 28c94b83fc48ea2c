"""Event subscription: storaged's signals as Event records, in order, as an async iterator."""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..api import JOB_IFACE
from .errors import Failed

if TYPE_CHECKING:
    from .connection import Storaged


@dataclass
class Event:
    """One thing that happened.

    `type`: 'added', 'removed' or 'changed' (an object and its interface;
    `properties` holds the new values, all of them for 'added'), 'completed'
    or 'failed' (a job; `message` says how), 'started' or 'stopped' (storaged
    itself came onto the bus or left it; `path` and `interface` are empty).
    """

    type: str
    path: str = ""
    interface: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def kind(self) -> str:
        """'manager', 'pool', 'volume', 'job', or 'storaged' for its coming and going."""
        return self.interface.rsplit(".", 1)[-1].lower() if self.interface else "storaged"


def event_of(member: str, path: str, body: list) -> Event | None:
    if member == "NameOwnerChanged":
        return Event("started" if body[2] else "stopped")
    if member == "InterfacesAdded":
        obj, ifaces = body
        iface, props = next(iter(ifaces.items()))
        return Event("added", obj, iface, {k: v.value for k, v in props.items()})
    if member == "InterfacesRemoved":
        return Event("removed", body[0], body[1][0])
    if member == "PropertiesChanged":
        return Event("changed", path, body[0], {k: v.value for k, v in body[1].items()})
    if member == "Completed":
        ok, message = body
        return Event("completed" if ok else "failed", path, JOB_IFACE, message=message)
    return None


class Events:
    """Subscribed on entering; each `async for` step is the next Event. Ends with
    Failed when the connection to the bus is lost (storaged stopping is an event)."""

    def __init__(self, client: Storaged, namespace: str):
        self.client = client
        self.namespace = namespace
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscription: contextlib.AbstractAsyncContextManager | None = None
        self._lost: asyncio.Future | None = None

    def _on(self, member: str, path: str, body: list) -> None:
        event = event_of(member, path, body)
        if event:
            self.queue.put_nowait(event)

    async def __aenter__(self) -> Events:
        self._subscription = self.client.subscription(self.namespace, self._on)
        await self._subscription.__aenter__()
        # Shielded: cancelling a plain wait would cancel the bus's own disconnect future.
        self._lost = asyncio.shield(self.client.bus.wait_for_disconnect())
        return self

    async def __aexit__(self, *exc) -> None:
        if self._lost:
            self._lost.cancel()
        if self._subscription:
            await self._subscription.__aexit__(*exc)

    def __aiter__(self) -> Events:
        return self

    async def __anext__(self) -> Event:
        if not self.queue.empty():
            return self.queue.get_nowait()
        assert self._lost is not None, "async with ... events() first"
        following = asyncio.ensure_future(self.queue.get())
        try:
            await asyncio.wait([following, self._lost], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not following.done():
                following.cancel()
        if following.done() and not following.cancelled():
            return following.result()
        if not self._lost.cancelled():
            self._lost.exception()  # retrieved: how it ended is said here
        raise Failed(f"lost the connection to {self.client.where or 'the bus'}",
                     "org.freedesktop.DBus.Error.Disconnected")
