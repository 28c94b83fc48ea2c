"""The blocking wrapper: the same API without await, for scripts (not for use inside a running loop)."""
from __future__ import annotations

import asyncio
import inspect
from typing import Any

from .connection import open_connection
from .objects import Object


class Blocking:
    """Wraps a Storaged, Pool, Volume or Job: each coroutine method runs to its end
    on the wrapper's own event loop; objects it returns come back wrapped too."""

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop):
        self._target = target
        self._loop = loop

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, Object):
            return Blocking(value, self._loop)
        if isinstance(value, list) and value and isinstance(value[0], Object):
            return [Blocking(v, self._loop) for v in value]
        return value

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if inspect.iscoroutinefunction(value):
            def run(*args: Any, **kwargs: Any) -> Any:
                return self._wrap(self._loop.run_until_complete(value(*args, **kwargs)))
            run.__doc__ = value.__doc__
            return run
        return value

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (and, for the connection itself, its event loop)."""
        if isinstance(self._target, Object):
            return
        try:
            self._loop.run_until_complete(self._target.close())
        finally:
            self._loop.close()


def connect(bus: str | None = None) -> Blocking:
    """As storaged.client.connect, without await: `with connect() as storaged: ...`."""
    loop = asyncio.new_event_loop()
    try:
        return Blocking(loop.run_until_complete(open_connection(bus)), loop)
    except BaseException:
        loop.close()
        raise
