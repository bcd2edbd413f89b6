"""Harness-side client for a peer agent's control socket.

Unix sockets live in the file system, not in a network namespace, so the
harness reaches an agent inside any lab node without routing into the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


class PeerError(HarnessError):
    """The agent refused a command or died."""


@dataclass
class PeerEvent:
    """Something the peer observed, stamped with the agent's wall clock (time.time())."""

    t: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


#: Commands whose result is the description the peer just set locally.
LOCAL_DESCRIPTION = ("create_offer", "create_answer", "create_pranswer")


class PeerClient:
    """One connection to one agent. Commands are request/response; events stream in."""

    def __init__(self, name: str, socket_path: Path) -> None:
        self.name = name
        self.socket_path = socket_path
        self.events: list[PeerEvent] = []
        self.descriptions: list[PeerEvent] = []
        """Descriptions this peer applied, recorded by the harness (see _record_description);
        apart from `events`, whose order and indices are the agent's."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._event_cond = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._closed_reason: str | None = None

    async def connect(self, timeout: float = 20.0, alive: Any = None) -> None:
        """Wait for the agent's socket. `alive()` (optional) says whether the agent still runs."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(self.socket_path), limit=16 * 1024 * 1024
                )
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if alive is not None and not alive():
                    raise PeerError(
                        f"{self.name}: agent exited before opening its control socket"
                    ) from None
                if time.monotonic() > deadline:
                    raise PeerError(
                        f"{self.name}: no control socket at {self.socket_path} after {timeout:.0f} s"
                    ) from None
                await asyncio.sleep(0.02)
        self._task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                msg = json.loads(line)
                if "event" in msg:
                    async with self._event_cond:
                        self.events.append(PeerEvent(msg["t"], msg["event"], msg.get("data", {})))
                        self._event_cond.notify_all()
                elif (fut := self._pending.pop(msg.get("id", -1), None)) and not fut.done():
                    if msg.get("ok"):
                        fut.set_result(msg.get("result"))
                    else:
                        fut.set_exception(PeerError(f"{self.name}: {msg.get('error')}"))
        finally:
            self._closed_reason = "agent closed its control socket"
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(PeerError(f"{self.name}: {self._closed_reason}"))
            async with self._event_cond:
                self._event_cond.notify_all()

    async def call(self, cmd: str, timeout: float = 30.0, **args: Any) -> Any:
        """Send one command and wait for its result."""
        if self._writer is None or self._closed_reason:
            raise PeerError(
                f"{self.name}: not connected ({self._closed_reason or 'never connected'})"
            )
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._writer.write(json.dumps({"id": rid, "cmd": cmd, "args": args}).encode() + b"\n")
        await self._writer.drain()
        try:
            result = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._pending.pop(rid, None)
            raise PeerError(f"{self.name}: {cmd} got no answer in {timeout:.0f} s") from None
        self._record_description(cmd, args, result)
        return result

    def _record_description(self, cmd: str, args: dict[str, Any], result: Any) -> None:
        """Every description the peer applied, as `localdescription`/`remotedescription`
        events stamped by the harness (in `descriptions`): what the JSEP and SDP
        offer/answer checks read, merged with `events` by time."""
        if cmd in LOCAL_DESCRIPTION and isinstance(result, dict) and "sdp" in result:
            data = {"type": result.get("type"), "sdp": result["sdp"]}
            self.descriptions.append(PeerEvent(time.time(), "localdescription", data))
        elif cmd == "set_remote":
            data = {"type": args.get("type"), "sdp": args.get("sdp", "")}
            self.descriptions.append(PeerEvent(time.time(), "remotedescription", data))
        elif cmd == "rollback":
            self.descriptions.append(
                PeerEvent(time.time(), "localdescription", {"type": "rollback"})
            )

    async def wait_event(
        self, kind: str, /, timeout: float, since: float = 0.0, **match: Any
    ) -> PeerEvent:
        """First event of `kind` at or after `since` whose data contains `match`."""

        def find() -> PeerEvent | None:
            for ev in self.events:
                if (
                    ev.kind == kind
                    and ev.t >= since
                    and all(ev.data.get(k) == v for k, v in match.items())
                ):
                    return ev
            return None

        async def waiter() -> PeerEvent:
            async with self._event_cond:
                while (ev := find()) is None:
                    if self._closed_reason:
                        raise PeerError(
                            f"{self.name}: {self._closed_reason} while waiting for {kind}"
                        )
                    await self._event_cond.wait()
                return ev

        try:
            return await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            seen = [f"{e.kind}{e.data}" for e in self.events[-8:]]
            raise PeerError(
                f"{self.name}: no {kind} {match or ''} within {timeout:.1f} s; last events: {seen}"
            ) from None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
