"""The forum recipe of an ICE restart through Janus's SIP plugin, watched second by second."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from harness.actions import restartlog
from harness.actions.gateway.common import candidate_types, ufrag
from harness.actions.gateway.janus_leg import janus_ice, leg_of, negotiate
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.janus_client import JanusEvent
    from harness.scenario.context import ScenarioContext


@action("janus_restart_ice")
class JanusRestartIce(Action):
    """The forum recipe: createOffer({iceRestart: true}), SIP plugin `update`, apply the answer.

    Recovery means the peer selected a pair of the new generation within `observe_s` and
    Janus's ICE (admin API) is connected with the peer's new ufrag.
    With `must_recover: false` the step records what happened and leaves the verdict
    to the `expect:` checks on the captures (so a failed restart still gets its evidence).
    """

    peer: str
    must_recover: bool = True
    timeout: float = 15.0
    observe_s: float = 3.0
    """How long after the answer the peer's ICE state and media are watched (the forum
    report's browser went `disconnected` 2-3 s after the restart); within `timeout`."""

    def peers(self) -> list[str]:
        return [self.peer]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:

        if self.observe_s + 2 > self.timeout:
            raise StepError(
                f"janus_restart_ice: observe_s ({self.observe_s:g}) must leave 2 s of `timeout`"
            )
        leg = leg_of(ctx, self.peer, "janus_restart_ice")
        peer = ctx.peer(self.peer)
        before = await peer.call("stats")
        old_local = before.get("ice", {}).get("local_ufrag")
        t0 = time.time()

        async def send(offer: dict[str, Any]) -> JanusEvent:
            return await leg.sip.update(offer, self.timeout, fail_on=("error", "hangup"))

        offer, answer, trickled = await negotiate(
            ctx, self.peer, leg, send, self.timeout, ice_restart=True
        )
        t_answer = time.time()
        detail: dict[str, Any] = {
            "peer_ufrag": f"{old_local} -> {ufrag(offer['sdp'])}",
            "janus_ufrag": " -> ".join(leg.remote_ufrags[-2:]),
            "answer_after_s": round(t_answer - t0, 3),
            "answer_candidates": candidate_types(answer["sdp"]),
            "answer_end_of_candidates": "a=end-of-candidates" in answer["sdp"],
            "trickled": trickled,
        }
        # Watch whether a new state comes and holds, second by second: which direction's
        # media stops, if any. The step's whole budget is `timeout` (+5 s from the runner).
        stats = await peer.call("stats")
        per_s: list[tuple[int, int]] = []
        for _ in range(max(1, round(self.observe_s))):
            await asyncio.sleep(1.0)
            prev, stats = stats, await peer.call("stats")
            per_s.append(media_delta(prev, stats))
        pair = next((e for e in peer.events if e.kind == "selectedpair" and e.t >= t0), None)
        recovered = pair is not None
        if pair is not None:
            detail["new_pair_after_s"] = round(pair.t - t0, 3)
            detail["new_pair"] = pair.data
        else:
            detail["error"] = f"no new selected pair within {self.observe_s:g} s of the answer"
        detail["peer_ice_state"] = stats.get("ice", {}).get("state")
        detail["peer_ice_states"] = [
            f"+{ev.t - t_answer:.2f}s {ev.data.get('state')}"
            for ev in peer.events
            if ev.kind == "iceconnectionstatechange" and ev.t >= t0
        ]
        restartlog.append(
            ctx.lab.run_dir,
            restartlog.RestartRecord(
                self.peer,
                t0,
                t_answer,
                time.time(),
                [
                    (ev.t, str(ev.data.get("state")))
                    for ev in peer.events
                    if ev.kind == "iceconnectionstatechange" and ev.t >= t0
                ],
            ),
        )
        detail["audio_sent_received_per_s"] = per_s
        detail["media_stopped"] = media_stopped(per_s)
        if (state := await janus_ice(ctx, leg)) is not None:
            detail["janus_ice"] = state
        # The peer alone can be wrong: Chromium keeps `connected` on the old pair while its
        # new-generation checks go unanswered. Janus must be connected with the new ufrag too.
        seen = detail.get("janus_ice", {})
        detail["recovered"] = (
            recovered
            and detail["peer_ice_state"] in ("connected", "completed")
            and seen.get("state") in ("connected", "ready")
            and seen.get("remote_ufrag") == ufrag(offer["sdp"])
        )
        if self.must_recover and not detail["recovered"]:
            raise StepError(f"janus_restart_ice: ICE did not recover: {detail}")
        return detail


def media_delta(a: dict[str, Any], b: dict[str, Any]) -> tuple[int, int]:
    """Audio packets the peer (sent, received) between two stats snapshots."""
    audio_a = a.get("media", {}).get("audio", {})
    audio_b = b.get("media", {}).get("audio", {})
    sent, received = (
        (audio_b.get(k) or 0) - (audio_a.get(k) or 0) for k in ("packets_sent", "packets_received")
    )
    return sent, received


def media_stopped(per_s: list[tuple[int, int]]) -> dict[str, int | None]:
    """Second (1-based, after the answer) from which each direction carried no audio."""

    def first_silent(i: int) -> int | None:
        for n in range(1, len(per_s) + 1):
            if all(c[i] == 0 for c in per_s[n - 1 :]):
                return n
        return None

    return {"sent": first_silent(0), "received": first_silent(1)}
