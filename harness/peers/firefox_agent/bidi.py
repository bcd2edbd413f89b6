"""A minimal WebDriver BiDi client: commands by id, events to one callback.

Firefox's built-in remote agent speaks BiDi over a WebSocket; this is all the
peer agent needs of it (session, preload script, navigate, evaluate), so a
general client library is not worth a dependency beyond `websockets`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import websockets

log = logging.getLogger(__name__)


class BiDiError(RuntimeError):
    """A command the browser answered with an error, or a lost connection."""


class BiDiSession:
    """One WebSocket to the remote agent with one WebDriver session on it."""

    def __init__(self, ws: websockets.ClientConnection, on_event: Callable[[str, dict], None]):
        self._ws = ws
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, on_event: Callable[[str, dict], None]) -> BiDiSession:
        ws = await websockets.connect(f"{url}/session", max_size=None, ping_interval=None)
        session = cls(ws, on_event)
        await session.command("session.new", {"capabilities": {}})
        return session

    async def command(self, method: str, params: dict[str, Any], timeout: float = 60.0) -> Any:
        """Send one command; its `result`, or BiDiError with the browser's message."""
        cmd_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = fut
        try:
            await self._ws.send(json.dumps({"id": cmd_id, "method": method, "params": params}))
            msg = await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(cmd_id, None)
        if msg.get("type") == "error":
            raise BiDiError(f"{method}: {msg.get('error')}: {msg.get('message')}")
        return msg.get("result")

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                msg = json.loads(raw)
                fut = self._pending.get(msg.get("id"))
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                elif msg.get("type") == "event":
                    self._on_event(msg["method"], msg.get("params", {}))
        except websockets.ConnectionClosed:
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(BiDiError("connection to the browser closed"))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()
