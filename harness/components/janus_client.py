"""Async driver of Janus's HTTP API and its SIP plugin, acting for a peer agent.

It does what a browser app with janus.js does: create a session, long-poll its
events, attach the SIP plugin, register, call/accept/update/hang up with the
peer's SDP. Sockets are made inside a lab node's namespace (by default the peer's
own node), so signalling crosses the lab network like the app's would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.components.ports import netns_socket
from harness.errors import HarnessError


class JanusError(HarnessError):
    """Janus refused a request, answered with an error event, or did not answer in time."""


# ---------------------------------------------------------------- HTTP over a namespace socket


@dataclass(frozen=True)
class HttpTarget:
    """Where an HTTP API listens, and the namespace our socket must live in."""

    host: str
    port: int
    netns: str | None = None
    """None only for loopback: the harness never routes into a lab from outside."""


async def http_json(
    target: HttpTarget, method: str, path: str, body: Any = None, timeout: float = 10.0
) -> Any:
    """One HTTP/1.1 request with a JSON body; returns the decoded JSON reply.

    One connection per request keeps this small and lets a long poll run beside
    ordinary requests; Janus's API is a handful of requests per second at most.
    """
    loop = asyncio.get_running_loop()
    data = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Connection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    async with asyncio.timeout(timeout):
        if target.netns is None:
            reader, writer = await asyncio.open_connection(target.host, target.port)
        else:
            sock = netns_socket(target.netns)
            try:
                await loop.sock_connect(sock, (target.host, target.port))
            except BaseException:
                sock.close()
                raise
            reader, writer = await asyncio.open_connection(sock=sock)
        try:
            writer.write(head + data)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
    status, payload = _parse_response(raw)
    if status != 200:
        raise JanusError(f"{method} {path}: HTTP {status}: {payload[:200]!r}")
    return json.loads(payload)


def _parse_response(raw: bytes) -> tuple[int, bytes]:
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise JanusError(f"not an HTTP response: {raw[:80]!r}") from None
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, rest = b"", payload
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2 :]
        payload = body
    return status, payload


# ---------------------------------------------------------------- Janus API


@dataclass
class JanusEvent:
    """An event for one handle, stamped with our wall clock when it arrived."""

    t: float
    kind: str
    """The SIP plugin's result event ("registered", "incomingcall", ...) or Janus's own
    event type ("webrtcup", "media", "hangup", "slowlink", ...)."""
    data: dict[str, Any] = field(default_factory=dict)
    jsep: dict[str, Any] | None = None
    error: str | None = None


def _tx() -> str:
    return secrets.token_hex(6)


class JanusSession:
    """A Janus session: keep-alives and a long poll run as tasks until close()."""

    def __init__(self, target: HttpTarget, base: str = "/janus") -> None:
        self.target = target
        self.base = base
        self.id: int | None = None
        self.handles: dict[int, JanusHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.poll_error: BaseException | None = None

    async def request(self, path: str, body: dict[str, Any], timeout: float = 10.0) -> Any:
        body = {"transaction": _tx(), **body}
        reply = await http_json(self.target, "POST", path, body, timeout)
        if reply.get("janus") == "error":
            err = reply.get("error", {})
            raise JanusError(f"{body['janus']}: {err.get('code')} {err.get('reason')}")
        return reply

    async def info(self) -> dict[str, Any]:
        return await http_json(self.target, "GET", f"{self.base}/info")

    async def create(self) -> JanusSession:
        reply = await self.request(self.base, {"janus": "create"})
        self.id = reply["data"]["id"]
        self._tasks = [
            asyncio.create_task(self._poll(), name=f"janus-poll-{self.id}"),
            asyncio.create_task(self._keepalive(), name=f"janus-keepalive-{self.id}"),
        ]
        return self

    async def attach(self, plugin: str) -> JanusHandle:
        reply = await self.request(f"{self.base}/{self.id}", {"janus": "attach", "plugin": plugin})
        handle = JanusHandle(self, reply["data"]["id"], plugin)
        self.handles[handle.id] = handle
        return handle

    async def close(self) -> None:
        """Stop polling and destroy the session (Janus hangs up its handles)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.id is not None:
            with contextlib.suppress(JanusError, OSError, TimeoutError):
                await self.request(f"{self.base}/{self.id}", {"janus": "destroy"}, timeout=3)
            self.id = None

    async def __aenter__(self) -> JanusSession:
        return await self.create()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _keepalive(self, every: float = 20.0) -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(JanusError, OSError, TimeoutError):
                await self.request(f"{self.base}/{self.id}", {"janus": "keepalive"})

    async def _poll(self) -> None:
        """Long-poll events like janus.js: GET the session, dispatch, repeat."""
        path = f"{self.base}/{self.id}?maxev=10&rid="
        failures = 0
        while True:
            try:
                reply = await http_json(
                    self.target, "GET", path + str(int(time.time() * 1000)), timeout=40
                )
                failures = 0
            except (JanusError, OSError, TimeoutError, ValueError) as exc:
                # ValueError: a restarting Janus answers with an empty, non-JSON reply
                failures += 1
                if failures >= 5:  # Janus is gone: say so to every waiter, stop
                    self.poll_error = exc
                    for handle in self.handles.values():
                        handle.wake()
                    return
                await asyncio.sleep(0.2)
                continue
            for msg in reply if isinstance(reply, list) else [reply]:
                to = self.handles.get(msg.get("sender", -1))
                if to is not None:
                    to.dispatch(msg)


class JanusHandle:
    """One plugin handle: send messages, collect every event Janus sends for it."""

    def __init__(self, session: JanusSession, handle_id: int, plugin: str) -> None:
        self.session = session
        self.id = handle_id
        self.plugin = plugin
        self.events: list[JanusEvent] = []
        # SDPs Janus has acknowledged: its core has parsed an SDP when it acks the message
        self.jsep_acks = 0
        self._changed = asyncio.Event()

    @property
    def path(self) -> str:
        return f"{self.session.base}/{self.session.id}/{self.id}"

    async def message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> Any:
        msg: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        reply = await self.session.request(self.path, msg)
        if jsep is not None:
            self.jsep_acks += 1
            self.wake()
        return reply

    async def wait_jsep_ack(self, count: int, timeout: float) -> None:
        """Until Janus has acknowledged `count` SDPs: a candidate trickled before Janus has
        parsed the SDP it belongs to goes to the previous ICE generation (RFC 8838 s. 8.1
        orders the description first)."""
        deadline = time.monotonic() + timeout
        while self.jsep_acks < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise JanusError(
                    f"{self.plugin}: Janus did not acknowledge the SDP within {timeout:.0f} s"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def trickle(self, candidate: dict[str, Any] | None) -> None:
        """Send one ICE candidate ({"candidate", "sdpMid", "sdpMLineIndex"}), None = completed."""
        await self.session.request(
            self.path, {"janus": "trickle", "candidate": candidate or {"completed": True}}
        )

    async def detach(self) -> None:
        await self.session.request(self.path, {"janus": "detach"})
        self.session.handles.pop(self.id, None)

    def dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("janus", "")
        data: dict[str, Any] = {}
        error = None
        if kind == "event":
            data = msg.get("plugindata", {}).get("data", {})
            error = data.get("error")
            kind = data.get("result", {}).get("event") or ("error" if error else "event")
        else:
            data = {k: v for k, v in msg.items() if k not in ("janus", "session_id", "sender")}
        self.events.append(JanusEvent(time.time(), kind, data, msg.get("jsep"), error))
        self.wake()

    def wake(self) -> None:
        self._changed.set()

    async def wait_event(
        self,
        kinds: str | tuple[str, ...],
        timeout: float = 10.0,
        since: int = 0,
        fail_on: tuple[str, ...] = ("error",),
        match: Callable[[JanusEvent], bool] | None = None,
    ) -> JanusEvent:
        """The first event (from index `since`) of one of `kinds`; JanusError on a failure kind."""
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        deadline = time.monotonic() + timeout
        seen = since
        while True:
            for ev in self.events[seen:]:
                if ev.kind in fail_on:
                    raise JanusError(
                        f"{self.plugin}: {ev.kind} while waiting for {kinds}: {ev.error or ev.data}"
                    )
                if ev.kind in kinds and (match is None or match(ev)):
                    return ev
            seen = len(self.events)
            if self.session.poll_error is not None:
                raise JanusError(f"event poll failed: {self.session.poll_error}")
            left = deadline - time.monotonic()
            if left <= 0:
                got = ", ".join(e.kind for e in self.events[since:]) or "nothing"
                raise JanusError(
                    f"{self.plugin}: no {'/'.join(kinds)} within {timeout:.0f} s (got {got})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)


# ---------------------------------------------------------------- SIP plugin


class SipPluginClient:
    """The SIP plugin, driven the way janus.js apps drive it (janus.plugin.sip API)."""

    PLUGIN = "janus.plugin.sip"

    def __init__(self, handle: JanusHandle) -> None:
        self.handle = handle

    @classmethod
    async def attach(cls, session: JanusSession) -> SipPluginClient:
        return cls(await session.attach(cls.PLUGIN))

    @property
    def events(self) -> list[JanusEvent]:
        return self.handle.events

    async def register(
        self,
        username: str,
        proxy: str,
        secret: str = "",
        display_name: str | None = None,
        timeout: float = 10.0,
        **extra: Any,
    ) -> JanusEvent:
        """REGISTER `username` (a SIP URI) via `proxy` (a SIP URI); wait for the result."""
        body: dict[str, Any] = {
            "request": "register",
            "username": username,
            "proxy": proxy,
            "secret": secret,
            **extra,
        }
        if display_name:
            body["display_name"] = display_name
        return await self._request(body, "registered", ("registration_failed", "error"), timeout)

    async def call(
        self, uri: str, offer: dict[str, Any], timeout: float = 15.0, **extra: Any
    ) -> JanusEvent:
        """INVITE `uri` with the peer's offer; returns the "accepted" event carrying the answer."""
        since = len(self.events)
        await self.handle.message({"request": "call", "uri": uri, **extra}, jsep=offer)
        return await self.handle.wait_event("accepted", timeout, since, fail_on=("error", "hangup"))

    async def wait_incoming(self, timeout: float = 15.0) -> JanusEvent:
        """Wait for an INVITE; the event's jsep is the offer (None for an offerless INVITE)."""
        return await self.handle.wait_event("incomingcall", timeout)

    async def accept(self, answer: dict[str, Any], timeout: float = 10.0) -> JanusEvent:
        return await self._request({"request": "accept"}, "accepted", ("error",), timeout, answer)

    async def update(
        self, offer: dict[str, Any], timeout: float = 10.0, fail_on: tuple[str, ...] = ("error",)
    ) -> JanusEvent:
        """Renegotiate (e.g. an ICE restart): sends a re-INVITE; returns the event with the answer.

        Janus 1.1.2 acknowledges with "updating" and carries the answer in an
        "accepted" event; newer versions send "updated".
        """
        return await self._request(
            {"request": "update"},
            ("updated", "accepted"),
            fail_on,
            timeout,
            offer,
            match=lambda ev: ev.jsep is not None,
        )

    async def hangup(self, timeout: float = 10.0) -> JanusEvent:
        return await self._request({"request": "hangup"}, "hangup", ("error",), timeout)

    async def unregister(self, timeout: float = 10.0) -> JanusEvent:
        return await self._request({"request": "unregister"}, "unregistered", ("error",), timeout)

    async def _request(
        self,
        body: dict[str, Any],
        done: str | tuple[str, ...],
        fail_on: tuple[str, ...],
        timeout: float,
        jsep: dict[str, Any] | None = None,
        match: Callable[[JanusEvent], bool] | None = None,
    ) -> JanusEvent:
        since = len(self.events)
        await self.handle.message(body, jsep=jsep)
        return await self.handle.wait_event(done, timeout, since, fail_on=fail_on, match=match)
