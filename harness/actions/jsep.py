"""The `jsep` step: offer/answer by hand, one JSEP operation at a time.

`call` does the usual offer -> answer. This step scripts any sequence the
JSEP state machine allows (RFC 8829 3.2, 4.1.10): provisional answers, rollback,
glare (both sides offering, the polite one rolling back); then, with `connect`,
waits until both peers are connected and treats them as a call. Descriptions
carry all candidates (peers need `trickle: false`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.actions.registry import Action, action
from harness.actions.steps import StepError
from harness.errors import UnsupportedError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext

COMMANDS = {
    "offer": "create_offer",
    "answer": "create_answer",
    "pranswer": "create_pranswer",
    "rollback": "rollback",
}
#: What a peer kind cannot do, and why (checked before the agent is asked).
LACKS = {
    "aiortc": (
        {"pranswer", "rollback", "remote_rollback", "set_remote pranswer"},
        "aiortc 1.x's RTCPeerConnection takes only offers and answers",
    ),
    "firefox": (
        {"pranswer", "set_remote pranswer"},
        "Firefox 153 throws NotSupportedError 'pranswer not yet implemented' "
        "(PeerConnection.sys.mjs, _setLocalDescription and _setRemoteDescription)",
    ),
}


class JsepOp(BaseModel):
    """One operation: `peer` does `op`; `set_remote` takes what `from` last produced."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    peer: str
    op: Literal["offer", "answer", "pranswer", "rollback", "set_remote", "remote_rollback"]
    from_: str | None = Field(default=None, alias="from")


@action("jsep")
class Jsep(Action):
    """Run `script` in order; with `connect: [a, b]`, wait until a and b are connected."""

    script: list[JsepOp] = Field(min_length=1)
    connect: list[str] = []

    def peers(self) -> list[str]:
        return sorted({o.peer for o in self.script} | {o.from_ for o in self.script if o.from_})

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        for name in self.peers():
            spec = ctx.peer_spec(name)
            if spec.trickle:
                raise StepError(f"jsep: peer {name!r} needs `trickle: false` (no candidate relay)")
        made: dict[str, dict[str, str]] = {}
        started = time.time()
        for i, op in enumerate(self.script):
            kind = ctx.peer_spec(op.peer).kind
            what: str = op.op
            if op.op == "set_remote":
                what = f"set_remote {made.get(op.from_ or '', {}).get('type')}"
            lacks, why = LACKS.get(kind, (set(), ""))
            if what in lacks:
                raise UnsupportedError(f"jsep script[{i}]: {what} on {op.peer} ({kind}): {why}")
            peer = ctx.peer(op.peer)
            if op.op in COMMANDS:
                sdp = await peer.call(COMMANDS[op.op], timeout=self.timeout)
                if op.op != "rollback":
                    made[op.peer] = sdp
            elif op.op == "remote_rollback":
                await peer.call("set_remote", type="rollback", sdp="", timeout=self.timeout)
            else:
                if not op.from_ or op.from_ not in made:
                    raise StepError(
                        f"jsep script[{i}]: set_remote needs `from` a peer that made one"
                    )
                await peer.call("set_remote", **made[op.from_], timeout=self.timeout)
        out: dict[str, Any] = {"ops": len(self.script)}
        if self.connect:
            if len(self.connect) != 2:
                raise StepError("jsep: connect names two peers")
            a, b = self.connect
            for name in (a, b):
                ev = await ctx.peer(name).wait_event(
                    "connectionstatechange", self.timeout, since=started, state="connected"
                )
                out[f"{name}_connected_after_s"] = round(ev.t - started, 3)
            ctx.calls[a], ctx.calls[b] = b, a
        return out
