"""What a janus.js app holds for a peer (its Janus session and SIP handle), and SDP exchange.

The harness plays the browser app's JavaScript: it holds the Janus session for the
peer, carries the peer's SDP to the SIP plugin and back, and forwards trickled
candidates. Sessions live in `ctx.extras["janus"]`, one per peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.actions.gateway.common import ufrag
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.janus import Janus
    from harness.components.janus_client import JanusEvent, JanusSession, SipPluginClient
    from harness.components.kamailio import Kamailio
    from harness.peers.client import PeerClient
    from harness.scenario.context import ScenarioContext


@dataclass
class JanusLeg:
    """What a janus.js app holds for one peer: its session, SIP handle and the current call."""

    janus: Janus
    registrar: Kamailio
    session: JanusSession
    sip: SipPluginClient
    user: str
    remote_ufrags: list[str] = field(default_factory=list)
    """Janus's ICE ufrag in each of its SDPs, oldest first (one per restart after the first)."""
    incoming_seen: int = 0
    """Index in the handle's events after the last `incomingcall` answered."""


def legs(ctx: ScenarioContext) -> dict[str, JanusLeg]:
    return ctx.extras.setdefault("janus", {})


def leg_of(ctx: ScenarioContext, peer: str, step: str) -> JanusLeg:
    try:
        return legs(ctx)[peer]
    except KeyError:
        raise StepError(
            f"{step}: peer {peer!r} has no Janus session (janus_register first)"
        ) from None


async def forward_candidates(
    peer: PeerClient, leg: JanusLeg, mark: int, timeout: float, sdp_acks: int
) -> int:
    """Trickle: pass the peer's `icecandidate` events (from index `mark`) to Janus until the end,
    once Janus has acknowledged the SDP they belong to (its `sdp_acks`-th).

    Sent before, a candidate of an ICE restart reached Janus ahead of the `update` (35 us
    apart, each on its own HTTP connection: the trickle was acked first) and went to the old
    generation; Janus then never checked the new one (matrix cell trickle-relay-nat, --jobs 3).
    """
    deadline = time.monotonic() + timeout
    await leg.sip.handle.wait_jsep_ack(sdp_acks, timeout)
    sent, seen = 0, mark
    while time.monotonic() < deadline:
        for ev in peer.events[seen:]:
            seen += 1
            if ev.kind != "icecandidate":
                continue
            cand = ev.data.get("candidate")
            if cand is None:
                await leg.sip.handle.trickle(None)
                return sent
            await leg.sip.handle.trickle(
                {
                    "candidate": cand,
                    "sdpMid": ev.data.get("sdp_mid"),
                    "sdpMLineIndex": ev.data.get("sdp_mline_index"),
                }
            )
            sent += 1
        await asyncio.sleep(0.02)
    return sent


async def negotiate(
    ctx: ScenarioContext,
    peer_name: str,
    leg: JanusLeg,
    send: Callable[[dict[str, Any]], Awaitable[JanusEvent]],
    timeout: float,
    ice_restart: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Offer from the peer, `send(offer)` to the SIP plugin, answer back; trickle if the peer does.

    Returns (offer, answer event data, candidates trickled).
    """
    peer = ctx.peer(peer_name)
    trickle = ctx.peer_spec(peer_name).trickle
    mark = len(peer.events)
    offer = await peer.call("create_offer", ice_restart=ice_restart)
    acks = leg.sip.handle.jsep_acks + 1
    relay = (
        asyncio.create_task(forward_candidates(peer, leg, mark, timeout, acks)) if trickle else None
    )
    try:
        ev = await send(offer)
        if ev.jsep is None or ev.jsep.get("type") != "answer":
            raise StepError(f"Janus answered without an SDP answer: {ev.kind} {ev.data}")
        await peer.call("set_remote", type="answer", sdp=ev.jsep["sdp"])
        leg.remote_ufrags.append(ufrag(ev.jsep["sdp"]) or "?")
        sent = await asyncio.wait_for(relay, timeout) if relay is not None else 0
        return offer, {"sdp": ev.jsep["sdp"], **ev.data}, sent
    finally:
        if relay is not None and not relay.done():
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay


async def answer_offer(
    ctx: ScenarioContext,
    peer_name: str,
    leg: JanusLeg,
    offer: dict[str, Any],
    send: Callable[[dict[str, Any]], Awaitable[JanusEvent]],
    timeout: float,
) -> tuple[dict[str, Any], int]:
    """Janus's offer applied at the peer, the peer's answer `send`-ed back; trickle if it does.

    The other direction of `negotiate`: an incoming SIP call, where Janus is the offerer
    on the WebRTC leg. Returns (answer, candidates trickled).
    """
    peer = ctx.peer(peer_name)
    trickle = ctx.peer_spec(peer_name).trickle
    mark = len(peer.events)
    await peer.call("set_remote", type="offer", sdp=offer["sdp"])
    leg.remote_ufrags.append(ufrag(offer["sdp"]) or "?")
    answer = await peer.call("create_answer")
    acks = leg.sip.handle.jsep_acks + 1
    relay = (
        asyncio.create_task(forward_candidates(peer, leg, mark, timeout, acks)) if trickle else None
    )
    try:
        await send(answer)
        sent = await asyncio.wait_for(relay, timeout) if relay is not None else 0
        return answer, sent
    finally:
        if relay is not None and not relay.done():
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay


async def janus_ice(ctx: ScenarioContext, leg: JanusLeg) -> dict[str, Any] | None:
    """Janus's own view of the leg's ICE and DTLS (admin API), or None if it does not answer:
    the peer alone can be wrong about which generation is connected."""
    from harness.components.janus_admin import JanusAdmin
    from harness.components.janus_client import HttpTarget

    target = HttpTarget(
        leg.janus.listen_address(), leg.janus.options.admin_port, ctx.lab.netns(leg.janus.node)
    )
    try:
        st = await JanusAdmin(target).handle_state(leg.session.id, leg.sip.handle.id)  # type: ignore[arg-type]
    except Exception:  # the admin API is evidence, not a step: its absence is recorded as such
        return None
    return {
        "state": st.ice_state,
        "remote_ufrag": st.remote_ufrag,
        "local_ufrag": st.local_ufrag,
        "selected_pair": st.selected_pair,
        "dtls": st.dtls_state,
    }
