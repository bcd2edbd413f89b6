"""App reactions: what the app around a peer does when its network misbehaves.

Real apps differ: some restart ICE when the connection goes `disconnected` or
`failed` (after a grace period), some restart as soon as the OS says the network
changed, some rely on ICE and consent freshness alone. A scenario picks one per
peer (`reaction:` in its peer spec); the runner starts one background task per
peer, and each restart it makes is written to the run's mobility log with the
times of its offer and answer (from the peer's own signalling-state events).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.actions.mobility import MobilityLog
    from harness.peers.client import PeerClient, PeerEvent
    from harness.scenario.context import ScenarioContext

Trigger = Literal["disconnected", "failed", "network_change"]
POLL_S = 0.02


class ReactionSpec(BaseModel):
    """`reaction:` of a peer: when its app restarts ICE (empty `restart_on`: never)."""

    model_config = ConfigDict(extra="forbid")
    restart_on: list[Trigger] = []
    after_ms: int = 0
    """Grace period after `disconnected`/`failed`; the restart happens only if the state held."""
    max_restarts: int = 3
    timeout: float = 15.0
    """How long one restart may take to select a new pair."""


def start_reaction(ctx: ScenarioContext, peer: str) -> asyncio.Task[None] | None:
    """The runner's hook: start `peer`'s reaction task (None when it has none)."""
    spec: ReactionSpec = ctx.peer_spec(peer).reaction
    if not spec.restart_on:
        return None
    reaction = Reaction(ctx, peer, spec)
    task = asyncio.create_task(reaction.run(), name=f"reaction-{peer}")
    reaction.task = task
    ctx.extras.setdefault("reactions", {})[peer] = reaction
    return task


async def settle_reactions(ctx: ScenarioContext) -> None:
    """Let each app finish the ICE restart it is making, within the restart's own budget.

    A step that ends the call must not end it under a restart still being observed: the
    restart would be judged on a closed call (or not logged at all), and whether it was
    depended on how fast the machine was (measured: a loaded CI ended one 1 s early).
    """
    for reaction in ctx.extras.get("reactions", {}).values():
        if not reaction.idle.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reaction.idle.wait(), reaction.spec.timeout + 5)


def mobility_log(ctx: ScenarioContext) -> MobilityLog:
    """The run's network-event log (its module loads when a run reacts, not with the model)."""
    from harness.actions.mobility import mobility_log as log

    return log(ctx)


class Reaction:
    """One peer's app logic: watch its ICE state and the node's network signals, restart ICE."""

    def __init__(self, ctx: ScenarioContext, peer: str, spec: ReactionSpec) -> None:
        self.ctx, self.peer_name, self.spec = ctx, peer, spec
        self.node = ctx.peer_spec(peer).node
        self.restarts = 0
        self.task: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        """Clear while a restart is in flight (until its outcome is logged)."""
        self.idle.set()

    async def run(self) -> None:
        """Watch until the run ends; a crash is logged (the run's evidence), never lost."""
        try:
            await self._watch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must show in the run's log, not vanish
            mobility_log(self.ctx).record(
                "reaction_error",
                self.node,
                peer=self.peer_name,
                error=f"{type(exc).__name__}: {exc}",
            )

    async def _watch(self) -> None:
        peer = self.ctx.peer(self.peer_name)
        log = mobility_log(self.ctx)
        seen_events, seen_log = len(peer.events), len(log.events)
        deadline = time.monotonic() + self.ctx.scenario.spec.timeout
        while time.monotonic() < deadline and self.restarts < self.spec.max_restarts:
            await asyncio.sleep(POLL_S)
            if self.peer_name not in self.ctx.peers:
                return  # the peer was stopped: the run is over
            trigger: tuple[str, float] | None = None
            for ev in log.events[seen_log:]:
                if ev.signal and ev.node == self.node and "network_change" in self.spec.restart_on:
                    trigger = ("network_change", ev.t)
            seen_log = len(log.events)
            for pev in peer.events[seen_events:]:
                state = pev.data.get("state")
                if pev.kind == "iceconnectionstatechange" and state in self.spec.restart_on:
                    trigger = trigger or (str(state), pev.t)
            seen_events = len(peer.events)
            if trigger is None:
                continue
            if trigger[0] != "network_change" and not await self._held(peer, trigger[0]):
                continue
            await self._restart(peer, *trigger)
            seen_events = len(peer.events)  # states seen during the restart are its own doing

    async def _held(self, peer: PeerClient, state: str) -> bool:
        """Wait the grace period; True if the ICE state is still `state` after it."""
        await asyncio.sleep(self.spec.after_ms / 1000)
        states = [e for e in peer.events if e.kind == "iceconnectionstatechange"]
        return bool(states) and states[-1].data.get("state") == state

    async def _restart(self, peer: PeerClient, trigger: str, trigger_t: float) -> None:
        """Restart ICE the app's way (p2p signalling, or through Janus) and log its times."""
        self.restarts += 1
        self.idle.clear()
        try:
            await self._restart_logged(peer, trigger, trigger_t)
        finally:
            self.idle.set()

    async def _restart_logged(self, peer: PeerClient, trigger: str, trigger_t: float) -> None:
        log = mobility_log(self.ctx)
        started = time.time()
        record: dict[str, Any] = {"trigger": trigger, "trigger_t": trigger_t, "start": started}
        try:
            if "janus" in self.ctx.extras and self.peer_name in self.ctx.extras["janus"]:
                record["via"] = "janus"
                record["detail"] = await self._restart_janus()
            else:
                record["via"] = "p2p"
                await self._restart_p2p(peer)
            record["ok"] = True
        except (HarnessError, TimeoutError) as exc:
            record["ok"] = False
            record["error"] = str(exc).splitlines()[0]
        offer = _first(peer.events, "signalingstatechange", started, state="have-local-offer")
        answer = _first(
            peer.events, "signalingstatechange", offer.t if offer else started, state="stable"
        )
        pair = _first(peer.events, "selectedpair", started)
        record["offer_t"] = offer.t if offer else None
        record["answer_t"] = answer.t if answer else None
        record["selected_t"] = pair.t if pair else None
        log.record("ice_restart", self.node, peer=self.peer_name, **record)

    async def _restart_p2p(self, peer: PeerClient) -> None:
        from harness.peers.signaling import restart_ice

        partner = self.ctx.calls.get(self.peer_name)
        if partner is None:
            raise HarnessError(f"{self.peer_name} is in no call to restart")
        await restart_ice(peer, self.ctx.peer(partner), timeout=self.spec.timeout)

    async def _restart_janus(self) -> dict[str, Any]:
        from harness.actions.gateway import JanusRestartIce

        step = JanusRestartIce(peer=self.peer_name, must_recover=True, timeout=self.spec.timeout)
        return await step.execute(self.ctx)


def _first(events: list[PeerEvent], kind: str, since: float, **match: Any) -> PeerEvent | None:
    for ev in events:
        if ev.kind == kind and ev.t >= since and all(ev.data.get(k) == v for k, v in match.items()):
            return ev
    return None


async def stop_reactions(ctx: ScenarioContext) -> None:
    """Cancel every reaction task still running (tests that drive peers without the runner)."""
    for reaction in ctx.extras.get("reactions", {}).values():
        if reaction.task is None:
            continue
        reaction.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaction.task
