"""A WebRTC offer sent straight to a plain SIP extension, with no gateway to translate it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.actions.gateway.sip_raw import invite_once
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


@action("sip_offer_webrtc_sdp")
class SipOfferWebrtcSdp(Action):
    """Send `peer`'s WebRTC offer in a plain SIP INVITE straight to an extension (no gateway).

    The step passes when the extension's final answer is `expect_status` (e.g. 488); its
    detail carries the SDP lint of the offer against the `sip` profile, which says why
    a plain SIP endpoint cannot take it (profile, DTLS, ICE, rtcp-mux, BUNDLE).
    """

    peer: str
    callee: str
    expect_status: int | None = None
    timeout: float = 10.0

    def peers(self) -> list[str]:
        return [self.peer]

    def components(self) -> list[str]:
        return [self.callee]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.analysis import sdp as sdpmod
        from harness.analysis import sdplint

        ext: Any = ctx.components[self.callee]  # a SIP extension or PBX: its address varies
        offer = await ctx.peer(self.peer).call("create_offer")
        node = ctx.peer_spec(self.peer).node
        local = str(ctx.lab.topology.node(node).iface().address)
        target = (ext.listen_address(), int(getattr(ext.options, "sip_port", 5060)))
        user = getattr(ext.options, "user", self.callee)
        status, reason, replies = await invite_once(
            ctx.lab.netns(node), local, target, user, offer["sdp"], self.timeout
        )
        findings = sdplint.lint(sdpmod.parse(offer["sdp"]), "offer", profile="sip")
        why = [
            f"{f.severity}: line {f.line_no} {f.line!r}: {f.message} ({f.rfc})" for f in findings
        ]
        detail = {"status": status, "reason": reason, "responses": replies, "sdp_lint": why}
        if self.expect_status is not None and status != self.expect_status:
            raise StepError(
                f"sip_offer_webrtc_sdp: {self.callee} answered {status} {reason}, "
                f"expected {self.expect_status}; lint: {why}"
            )
        if not any(f.severity == "error" for f in findings):
            raise StepError(
                f"sip_offer_webrtc_sdp: the SIP lint found no error in the offer: {why}"
            )
        return detail
