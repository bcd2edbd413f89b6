"""The basic steps of a call: call, wait, restart_ice, send_data, hangup."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import model_validator

from harness.actions.registry import Action, action
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext


class StepError(HarnessError):
    """A step could not do what it says (with what was seen instead)."""


@action("call")
class Call(Action):
    """Offer from `caller`, answer from `callee`, wait until both are connected."""

    caller: str
    callee: str

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.peers.signaling import connect_pair

        a, b = ctx.peer(self.caller), ctx.peer(self.callee)
        ctx.calls[self.caller] = self.callee
        ctx.calls[self.callee] = self.caller
        t0 = time.time()
        await connect_pair(a, b, timeout=self.timeout)
        return {"connected_after_s": round(time.time() - t0, 3)}


@action("wait")
class Wait(Action):
    """Wait a time (`seconds`) or for a peer event (`peer`, `event`, optional `state`)."""

    seconds: float | None = None
    peer: str | None = None
    event: str | None = None
    state: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Wait:
        if (self.seconds is None) == (self.event is None):
            raise ValueError("give either `seconds` or `event` (with `peer`)")
        if self.event is not None and self.peer is None:
            raise ValueError("waiting for an event needs `peer`")
        return self

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        if self.seconds is not None:
            await asyncio.sleep(self.seconds)
            return {}
        assert self.peer is not None and self.event is not None
        match = {"state": self.state} if self.state else {}
        ev = await ctx.peer(self.peer).wait_event(
            self.event, self.timeout, since=ctx.step_started, **match
        )
        return {"event_at_s": round(ev.t - ctx.t0, 3)}


@action("restart_ice")
class RestartIce(Action):
    """The app restarts ICE on `peer`: a new offer with fresh credentials, answered by its partner."""

    peer: str

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.peers.signaling import restart_ice

        partner = ctx.calls.get(self.peer)
        if partner is None:
            raise StepError(
                f"restart_ice: peer {self.peer!r} is not in a call (a `call` step comes first)"
            )
        a, b = ctx.peer(self.peer), ctx.peer(partner)
        if not await ctx.is_connected(self.peer):
            raise StepError(
                f"restart_ice: peer {self.peer!r} is not connected (its ICE state is {await ctx.ice_state(self.peer)})"
            )
        t0 = time.time()
        await restart_ice(a, b, timeout=self.timeout)
        return {"reconnected_after_s": round(time.time() - t0, 3)}


@action("send_data")
class SendData(Action):
    """Send text on the data channel; the partner must receive it."""

    peer: str
    text: str = "hello from rtc-harness"

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        partner = ctx.calls.get(self.peer)
        if partner is None:
            raise StepError(f"send_data: peer {self.peer!r} is not in a call")
        since = time.time()
        await ctx.peer(self.peer).call("send_data", text=self.text)
        ev = await ctx.peer(partner).wait_event(
            "datamessage", self.timeout, since=since - 1, text=self.text
        )
        return {"delivered_after_s": round(ev.t - since, 3)}


@action("hangup")
class Hangup(Action):
    """Hang up the peer's call; an ICE restart its app is making is logged first."""

    ends_call: ClassVar[bool] = True
    peer: str

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        await ctx.peer(self.peer).call("hangup", timeout=self.timeout)
        partner = ctx.calls.pop(self.peer, None)
        if partner:
            ctx.calls.pop(partner, None)
        return {}
