"""Agent side of the control channel (docs/peers.md): JSON lines over a unix socket.

Shared by every agent kind so they answer, time-stamp and report errors the
same way; an agent only provides `async def cmd_<name>(**args)` methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ControlServer:
    """Serves one agent's commands and pushes its events to every connected client."""

    def __init__(self, path: Path, handler: object) -> None:
        self.path = path
        self.handler = handler
        self._writers: set[asyncio.StreamWriter] = set()
        self._backlog: list[bytes] = []  # events before the harness connected
        self._server: asyncio.AbstractServer | None = None
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=16 * 1024 * 1024
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def emit(self, event: str, data: dict[str, Any] | None = None, t: float | None = None) -> None:
        """Send an event now, stamped with this process's wall clock."""
        line = json.dumps({"event": event, "t": t or time.time(), "data": data or {}}).encode()
        if not self._writers:
            self._backlog.append(line + b"\n")
        for w in list(self._writers):
            w.write(line + b"\n")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        for line in self._backlog:
            writer.write(line)
        self._backlog.clear()
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                # Commands run one after another, in order, as a peer connection expects.
                reply = await self._dispatch(msg)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
                if msg.get("cmd") == "shutdown":
                    self.stopped.set()
                    return
        except (ConnectionError, json.JSONDecodeError) as exc:
            logger.warning("control connection ended: %s", exc)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _dispatch(self, msg: dict[str, Any]) -> dict[str, Any]:
        rid = msg.get("id")
        method = getattr(self.handler, f"cmd_{msg.get('cmd')}", None)
        if method is None:
            return {"id": rid, "ok": False, "error": f"unknown command {msg.get('cmd')!r}"}
        try:
            result = await method(**(msg.get("args") or {}))
        except Exception as exc:  # every failure goes back to the harness, the agent lives on
            logger.debug("%s failed:\n%s", msg.get("cmd"), traceback.format_exc())
            return {"id": rid, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"id": rid, "ok": True, "result": result if result is not None else {}}
