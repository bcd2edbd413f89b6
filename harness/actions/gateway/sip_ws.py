"""The browser as its own SIP user agent (JsSIP over WebSocket in the Chromium agent)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from pydantic import Field

from harness.actions.gateway.common import callee_uri, component, wait_connected
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


@action("sip_ws_register")
class SipWsRegister(Action):
    """`peer` (a browser with JsSIP) registers `user` at Kamailio over SIP over WebSocket."""

    peer: str
    registrar: str = "kamailio"
    user: str | None = None
    password: str | None = None
    """Digest password (the registrar challenges with 401)."""
    expect_status: int | None = Field(None, ge=300, le=699)
    """The registration must fail with this SIP status (e.g. 403 for a wrong password)."""
    secure: bool = False
    """wss:// to the registrar's TLS WebSocket (its certificate from the run's CA)."""
    expect_error: str | None = None
    """The registration must fail with an error matching this regex (e.g. an untrusted
    certificate: the WebSocket never opens)."""

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.registrar]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.peers.client import PeerError

        kam = component(ctx, self.registrar, "kamailio", "sip_ws_register")
        if not kam.options.ws:
            raise StepError(f"sip_ws_register: {self.registrar} has no WebSocket (ws: true)")
        if self.secure and not kam.options.tls:
            raise StepError(f"sip_ws_register: {self.registrar} has no TLS (tls: true)")
        ws_uri = (
            f"wss://{kam.listen_address()}:{kam.options.wss_port}"
            if self.secure
            else f"ws://{kam.listen_address()}:{kam.options.ws_port}"
        )
        user = self.user or self.peer
        t0 = time.time()
        try:
            reply = await ctx.peer(self.peer).call(
                "sip_register",
                timeout=self.timeout,
                ws_uri=ws_uri,
                uri=f"sip:{user}@{kam.listen_address()}",
                password=self.password,
            )
        except PeerError as exc:
            console = [
                ev.data.get("text", "")
                for ev in ctx.peer(self.peer).events
                if ev.kind == "console" and ev.t >= t0
            ]
            error = "\n".join([str(exc).splitlines()[0], *console])
            if self.expect_error is not None and re.search(self.expect_error, error):
                return {"failed_after_s": round(time.time() - t0, 3), "error": error}
            if (
                self.expect_status is None
                or f": registrationFailed ({self.expect_status} " not in str(exc)
            ):
                want = f", expected {self.expect_status}" if self.expect_status else ""
                raise StepError(f"sip_ws_register: {error}{want}") from None
            return {"failed_after_s": round(time.time() - t0, 3), "error": str(exc)}
        if self.expect_status is not None or self.expect_error is not None:
            wanted = self.expect_status or f"an error /{self.expect_error}/"
            raise StepError(f"sip_ws_register: {user} registered over {ws_uri}, expected {wanted}")
        contacts = await asyncio.to_thread(kam.contacts, user)
        if not contacts:
            raise StepError(f"sip_ws_register: {self.registrar} holds no contact for {user!r}")
        return {
            "registered_after_s": round(time.time() - t0, 3),
            "ws_uri": ws_uri,
            "contact": reply.get("contact"),
            "registrar_contacts": contacts,
        }


@action("sip_ws_call")
class SipWsCall(Action):
    """`peer` calls a SIP extension itself (JsSIP over WebSocket); done when ICE is connected.

    The offer and answer travel through Kamailio, which has rtpengine turn the WebRTC
    media (ICE, DTLS-SRTP) into plain RTP for the extension.
    """

    peer: str
    registrar: str = "kamailio"
    callee: str | None = None
    uri: str | None = None

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.registrar] + ([self.callee] if self.callee else [])

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        kam = component(ctx, self.registrar, "kamailio", "sip_ws_call")
        if self.uri is None and self.callee is None:
            raise StepError("sip_ws_call: give `callee` (a component) or `uri`")
        uri = self.uri or await callee_uri(ctx, kam, self.callee or "", self.timeout)
        peer = ctx.peer(self.peer)
        t0 = time.time()
        reply = await peer.call("sip_call", timeout=self.timeout, target=uri)
        answered = time.time()
        connected = await wait_connected(peer, t0, max(1.0, self.timeout - (answered - t0)))
        from harness.peers.client import PeerError

        # ICE connected is not media yet: SRTP flows once DTLS is up, which took Firefox
        # 1.4 s more in one CI run (erin then recorded under a second of the call).
        try:
            dtls = await peer.wait_event(
                "dtlsstatechange",
                max(1.0, self.timeout - (time.time() - t0)),
                t0,
                state="connected",
            )
        except PeerError as exc:
            raise StepError(f"sip_ws_call: ICE connected but DTLS did not: {exc}") from None
        return {
            "uri": uri,
            "call_id": reply.get("call_id"),
            "answered_after_s": round(answered - t0, 3),
            "connected_after_s": round(connected - t0, 3),
            "dtls_connected_after_s": round(dtls.t - t0, 3),
        }


@action("sip_ws_answer")
class SipWsAnswer(Action):
    """`peer` (JsSIP) answers the next incoming INVITE; done when its ICE is connected.

    The caller is a plain SIP extension: Kamailio has rtpengine turn its RTP/AVP offer
    into ICE + DTLS-SRTP (UDP/TLS/RTP/SAVPF) for the browser, so rtpengine is the
    offerer on the WebRTC leg.
    """

    peer: str

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        peer = ctx.peer(self.peer)
        t0 = time.time()
        reply = await peer.call("sip_answer", timeout=self.timeout)
        answered = time.time()
        connected = await wait_connected(peer, t0, max(1.0, self.timeout - (answered - t0)))
        return {
            "from": reply.get("from"),
            "call_id": reply.get("call_id"),
            "answered_after_s": round(answered - t0, 3),
            "connected_after_s": round(connected - t0, 3),
        }


@action("sip_ws_hangup")
class SipWsHangup(Action):
    """`peer` ends its JsSIP call with a BYE and waits for the answer."""

    peer: str
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        t0 = time.time()
        await ctx.peer(self.peer).call("sip_hangup", timeout=self.timeout)
        return {"hangup_after_s": round(time.time() - t0, 3)}
