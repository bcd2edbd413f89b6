"""In-call actions of the WebRTC peer itself (not through a gateway API): DTMF."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.actions.registry import Action, action
from harness.errors import UnsupportedError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


@action("peer_dtmf")
class PeerDtmf(Action):
    """The peer sends `tones` as RFC 4733 telephone-events (RTCDTMFSender.insertDTMF)."""

    peer: str
    tones: str
    duration_ms: int = 100
    gap_ms: int = 70

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        kind = ctx.peer_spec(self.peer).kind
        if kind == "aiortc":
            raise UnsupportedError(
                "aiortc 1.16 has no DTMF sender (no RTCDTMFSender, no telephone-event encoder)"
            )
        await ctx.peer(self.peer).call(
            "send_dtmf",
            timeout=self.timeout,
            tones=self.tones,
            duration_ms=self.duration_ms,
            gap_ms=self.gap_ms,
        )
        return {"tones": self.tones}
