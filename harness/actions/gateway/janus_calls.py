"""Janus SIP plugin steps: register a peer, call an extension, hang up."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from harness.actions.gateway.common import (
    callee_uri,
    candidate_types,
    component,
    sip_registrar,
    wait_connected,
)
from harness.actions.gateway.janus_leg import JanusLeg, answer_offer, leg_of, legs, negotiate
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.janus_client import JanusEvent
    from harness.scenario.context import ScenarioContext


@action("janus_register")
class JanusRegister(Action):
    """Open a Janus session for `peer`, attach the SIP plugin, REGISTER `user` at the registrar."""

    peer: str
    janus: str = "janus"
    registrar: str = "kamailio"
    user: str | None = None
    api_via: str | None = None
    """Node whose namespace the API requests come from (default: the peer's node); e.g. the
    NAT box in front of a Janus behind NAT, acting as the reverse proxy a real set-up has."""
    secret: str | None = None
    """Digest password (the registrar challenges with 401)."""
    transport: Literal["udp", "tls"] = "udp"
    """tls: REGISTER (and later calls) over the registrar's TLS listener."""
    expect_status: int | None = Field(None, ge=300, le=699)
    """The registration must fail with this SIP status (e.g. 403 for a wrong password)."""

    def components(self) -> list[str]:
        return [self.janus, self.registrar]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.janus_client import (
            HttpTarget,
            JanusError,
            JanusSession,
            SipPluginClient,
        )

        janus = component(ctx, self.janus, "janus", "janus_register")
        kam = sip_registrar(ctx, self.registrar, "janus_register")
        node = self.api_via or ctx.peer_spec(self.peer).node
        if node not in ctx.lab.topology.nodes:
            raise StepError(f"janus_register: no node {node!r} (api_via)")
        target = HttpTarget(janus.listen_address(), janus.options.http_port, ctx.lab.netns(node))
        session = await JanusSession(target).create()
        sip = await SipPluginClient.attach(session)
        user = self.user or self.peer
        leg = JanusLeg(janus, kam, session, sip, user)
        legs(ctx)[self.peer] = leg
        t0 = time.time()
        aor = f"sip:{user}@{kam.listen_address()}"
        try:
            proxy = kam.tls_uri if self.transport == "tls" else kam.uri
            if self.transport == "tls" and not kam.options.tls:
                raise StepError(f"janus_register: {self.registrar} has no TLS (tls: true)")
            tls = {"sips": True, "outbound_proxy": proxy} if self.transport == "tls" else {}
            ev = await sip.register(
                aor, proxy, secret=self.secret or "", timeout=self.timeout, **tls
            )
        except JanusError as exc:
            failed = next((e for e in sip.events if e.kind == "registration_failed"), None)
            result = failed.data.get("result", {}) if failed else {}
            code, reason = result.get("code"), result.get("reason")
            legs(ctx).pop(self.peer, None)
            await session.close()
            if self.expect_status is None or code != self.expect_status:
                want = f", expected {self.expect_status}" if self.expect_status else ""
                raise StepError(f"janus_register: {user} not registered: {exc}{want}") from None
            return {"failed_after_s": round(time.time() - t0, 3), "code": code, "reason": reason}
        if self.expect_status is not None:
            raise StepError(f"janus_register: {user} registered, expected {self.expect_status}")
        return {
            "registered_after_s": round(time.time() - t0, 3),
            "username": ev.data.get("result", {}).get("username"),
        }


@action("janus_call")
class JanusCall(Action):
    """`peer` calls a SIP extension (`callee`: a baresip/sipp component, or `uri`) through Janus.

    Done when the peer's ICE is connected and Janus reports `webrtcup` (DTLS done).
    """

    peer: str
    callee: str | None = None
    uri: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.callee] if self.callee else []

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        leg = leg_of(ctx, self.peer, "janus_call")
        uri = self.uri or await self._callee_uri(ctx, leg)
        peer = ctx.peer(self.peer)
        t0 = time.time()
        since = len(leg.sip.events)

        async def send(offer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.call(uri, offer, timeout=self.timeout)

        offer, answer, trickled = await negotiate(ctx, self.peer, leg, send, self.timeout)
        left = max(1.0, self.timeout - (time.time() - t0))
        await wait_connected(peer, t0, left)
        await leg.sip.handle.wait_event("webrtcup", left, since)
        return {
            "uri": uri,
            "connected_after_s": round(time.time() - t0, 3),
            "offer_candidates": candidate_types(offer["sdp"]),
            "answer_candidates": candidate_types(answer["sdp"]),
            "trickled": trickled,
        }

    async def _callee_uri(self, ctx: ScenarioContext, leg: JanusLeg) -> str:
        if self.callee is None:
            raise StepError("janus_call: give `callee` (a component) or `uri`")
        return await callee_uri(ctx, leg.registrar, self.callee, self.timeout)


@action("janus_answer")
class JanusAnswer(Action):
    """`peer` answers an incoming SIP call: Janus's `incomingcall` offer in, `accept` out.

    Janus is the offerer on the WebRTC leg. Done when the peer's ICE is connected and
    Janus reports `webrtcup`. `expect_caller`: a substring of the caller's SIP URI.
    """

    peer: str
    expect_caller: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        leg = leg_of(ctx, self.peer, "janus_answer")
        t0 = time.time()
        ev = await leg.sip.handle.wait_event("incomingcall", self.timeout, leg.incoming_seen)
        leg.incoming_seen = leg.sip.events.index(ev) + 1
        caller = ev.data.get("result", {}).get("username", "")
        if self.expect_caller and self.expect_caller not in caller:
            raise StepError(f"janus_answer: call from {caller!r}, expected {self.expect_caller!r}")
        if ev.jsep is None or ev.jsep.get("type") != "offer":
            raise StepError(f"janus_answer: incomingcall without an offer: {ev.data}")
        since = len(leg.sip.events)
        peer = ctx.peer(self.peer)
        t_offer = time.time()

        async def send(answer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.accept(answer, timeout=self.timeout)

        answer, trickled = await answer_offer(ctx, self.peer, leg, ev.jsep, send, self.timeout)
        left = max(1.0, self.timeout - (time.time() - t0))
        connected = await wait_connected(peer, t_offer, left)
        await leg.sip.handle.wait_event("webrtcup", left, since)
        return {
            "caller": caller,
            "incoming_after_s": round(t_offer - t0, 3),
            "connected_after_s": round(connected - t_offer, 3),
            "offer_media": re.findall(r"^m=.*$", ev.jsep["sdp"], re.M),
            "answer_media": re.findall(r"^m=.*$", answer["sdp"], re.M),
            "offer_candidates": candidate_types(ev.jsep["sdp"]),
            "answer_candidates": candidate_types(answer["sdp"]),
            "offer_setup": sdp_attr(ev.jsep["sdp"], "setup"),
            "answer_setup": sdp_attr(answer["sdp"], "setup"),
            "trickled": trickled,
        }


def sdp_attr(sdp: str, name: str) -> str | None:
    """Value of the first `a=name:` line (e.g. the DTLS role offered in `a=setup`)."""
    prefix = f"a={name}:"
    return next((x[len(prefix) :].strip() for x in sdp.splitlines() if x.startswith(prefix)), None)


@action("janus_hangup")
class JanusHangup(Action):
    """Hang up the peer's SIP call (BYE through Kamailio), close its PeerConnection and session.

    An ICE restart the peer's app (`reaction:`) is making is logged first, within its budget.
    """

    ends_call: ClassVar[bool] = True
    peer: str
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        leg = leg_of(ctx, self.peer, "janus_hangup")
        t0 = time.time()
        ev = await leg.sip.hangup(timeout=self.timeout)
        await ctx.peer(self.peer).call("hangup")
        await leg.session.close()
        legs(ctx).pop(self.peer, None)
        return {
            "hangup_after_s": round(time.time() - t0, 3),
            "reason": ev.data.get("result", {}).get("reason"),
        }
