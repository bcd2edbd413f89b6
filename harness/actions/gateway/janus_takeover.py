"""The forum report's "WebRTC transfer": a second browser tries to take over an existing
Janus SIP leg by sending its own offer through the first one's `update`.

Nothing in Janus supports it: the handle keeps its DTLS session (a new fingerprint in
an update is not a new DTLS association), so the step records what happens instead of
judging it: the offer's and the answer's fingerprint, setup role and ufrag, each
browser's ICE and DTLS state and audio second by second, Janus's ICE (admin API).
The supported ways are a SIP transfer (REFER, janus-in-call.yaml) or a new call.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from harness.actions import restartlog
from harness.actions.gateway.common import ufrag
from harness.actions.gateway.janus_calls import sdp_attr
from harness.actions.gateway.janus_leg import janus_ice, leg_of, negotiate
from harness.actions.gateway.janus_restart import media_delta
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.janus_client import JanusEvent
    from harness.scenario.context import ScenarioContext


def _state(stats: dict[str, Any]) -> str:
    ice, dtls = stats.get("ice", {}), stats.get("dtls", {})
    return f"ice {ice.get('state')}, dtls {dtls.get('state')}"


@action("janus_takeover")
class JanusTakeover(Action):
    """`peer` sends its offer as an `update` on `of`'s Janus SIP handle; watch `observe_s`."""

    peer: str
    of: str
    observe_s: float = 5.0
    timeout: float = 15.0

    def peers(self) -> list[str]:
        return [self.peer, self.of]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.janus_client import JanusError

        leg = leg_of(ctx, self.of, "janus_takeover")
        newcomer, owner = ctx.peer(self.peer), ctx.peer(self.of)
        owner_before = await owner.call("stats")
        t0 = time.time()

        async def send(offer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.update(offer, self.timeout, fail_on=("error", "hangup"))

        try:
            offer, answer, _ = await negotiate(ctx, self.peer, leg, send, self.timeout)
        except (JanusError, StepError) as exc:
            return {"update_refused": str(exc)}
        t_answer = time.time()
        sdp = answer["sdp"]
        detail: dict[str, Any] = {
            "answer_after_s": round(time.time() - t0, 3),
            "owner_fingerprint": owner_before.get("dtls", {}).get("remote_fingerprint"),
            "offer": {
                "ufrag": ufrag(offer["sdp"]),
                "fingerprint": sdp_attr(offer["sdp"], "fingerprint"),
                "setup": sdp_attr(offer["sdp"], "setup"),
            },
            "answer": {
                "ufrag": ufrag(sdp),
                "fingerprint": sdp_attr(sdp, "fingerprint"),
                "setup": sdp_attr(sdp, "setup"),
            },
            "janus_ufrags": leg.remote_ufrags[-2:],
        }
        per_s: list[dict[str, Any]] = []
        snaps = {n: await p.call("stats") for n, p in ((self.peer, newcomer), (self.of, owner))}
        for i in range(max(1, round(self.observe_s))):
            await asyncio.sleep(1.0)
            row: dict[str, Any] = {"t": i + 1}
            for name, p in ((self.peer, newcomer), (self.of, owner)):
                now = await p.call("stats")
                sent, received = media_delta(snaps[name], now)
                snaps[name] = now
                row[name] = f"{_state(now)}, audio sent {sent} received {received}"
            per_s.append(row)
        detail["per_second"] = per_s
        # The owner's side as a restart record: the restart checks then say when Janus
        # stopped sending to it and whether its ICE went disconnected.
        restartlog.append(
            ctx.lab.run_dir,
            restartlog.RestartRecord(
                self.of,
                t0,
                t_answer,
                time.time(),
                [
                    (ev.t, str(ev.data.get("state")))
                    for ev in owner.events
                    if ev.kind == "iceconnectionstatechange" and ev.t >= t0
                ],
            ),
        )
        if (state := await janus_ice(ctx, leg)) is not None:
            detail["janus_ice"] = state
        return detail
