"""The harness as signalling server: offer/answer and trickled candidates between two peers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass, field
from typing import Any

from harness.peers.client import PeerClient, PeerError

UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)


def ufrags(sdp: str) -> set[str]:
    return set(UFRAG.findall(sdp))


@dataclass
class Negotiation:
    """One offer/answer exchange and when each side got (re)connected, in wall-clock seconds."""

    started: float
    offer: dict[str, str]
    answer: dict[str, str]
    connected: dict[str, float] = field(default_factory=dict)

    @property
    def offer_ufrags(self) -> set[str]:
        return ufrags(self.offer["sdp"])

    @property
    def answer_ufrags(self) -> set[str]:
        return ufrags(self.answer["sdp"])

    def elapsed(self) -> float:
        """From the first command to the later of the two sides being connected."""
        return max(self.connected.values()) - self.started


class CandidateRelay:
    """Forwards trickled candidates from one peer to the other, in order, until end-of-candidates."""

    def __init__(self, src: PeerClient, dst: PeerClient, start_index: int) -> None:
        self.src, self.dst, self.index = src, dst, start_index
        self.task: asyncio.Task[None] | None = None

    def start(self, timeout: float) -> None:
        self.task = asyncio.create_task(self._run(timeout))

    async def _run(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while self.index < len(self.src.events):
                ev = self.src.events[self.index]
                self.index += 1
                if ev.kind != "icecandidate":
                    continue
                await self.dst.call("add_candidate", **ev.data)
                if ev.data.get("candidate") is None:
                    return
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def negotiate(
    a: PeerClient,
    b: PeerClient,
    *,
    ice_restart: bool = False,
    wait_for: str = "connectionstatechange",
    timeout: float = 20.0,
) -> Negotiation:
    """A offers, B answers; relays trickled candidates; waits until both report `wait_for`."""
    marks = (len(a.events), len(b.events))
    started = time.time()
    relays: list[CandidateRelay] = []
    try:
        offer = await a.call("create_offer", ice_restart=ice_restart)
        await b.call("set_remote", **offer)
        relays.append(CandidateRelay(a, b, marks[0]))
        relays[-1].start(timeout)
        answer = await b.call("create_answer")
        await a.call("set_remote", **answer)
        relays.append(CandidateRelay(b, a, marks[1]))
        relays[-1].start(timeout)
        result = Negotiation(started, offer, answer)
        match: dict[str, Any] = {"state": "connected"} if wait_for.endswith("statechange") else {}
        events = await asyncio.gather(
            a.wait_event(wait_for, timeout, since=started, **match),
            b.wait_event(wait_for, timeout, since=started, **match),
        )
        for peer, ev in zip((a, b), events, strict=True):
            result.connected[peer.name] = ev.t
        for relay in relays:
            if relay.task is not None and relay.task.done() and relay.task.exception():
                raise PeerError(f"candidate relay failed: {relay.task.exception()}")
        return result
    finally:
        for relay in relays:
            await relay.stop()


async def connect_pair(a: PeerClient, b: PeerClient, *, timeout: float = 20.0) -> Negotiation:
    """Set up a call from A to B and wait until both peer connections are connected."""
    return await negotiate(a, b, timeout=timeout)


async def restart_ice(a: PeerClient, b: PeerClient, *, timeout: float = 20.0) -> Negotiation:
    """A restarts ICE; returns once both sides selected a pair of the new generation."""
    await a.call("restart_ice")
    result = await negotiate(a, b, wait_for="selectedpair", timeout=timeout)
    if not result.offer_ufrags or not result.answer_ufrags:
        raise PeerError("ICE restart: a description without ice-ufrag")
    return result
