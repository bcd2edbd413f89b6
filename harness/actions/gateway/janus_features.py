"""In-call requests of Janus's SIP plugin, as a janus.js app sends them: MESSAGE, DTMF as
SIP INFO, hold/resume, blind transfer (REFER); and waiting for what the SIP side sends."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Literal

from harness.actions.gateway.janus_leg import leg_of
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.janus_client import JanusEvent
    from harness.scenario.context import ScenarioContext


async def request(
    ctx: ScenarioContext,
    peer: str,
    step: str,
    body: dict[str, Any],
    done: str | tuple[str, ...],
    timeout: float,
) -> JanusEvent:
    """Send one SIP plugin request and wait for its acknowledgement event."""
    from harness.components.janus_client import JanusError

    leg = leg_of(ctx, peer, step)
    since = len(leg.sip.events)
    await leg.sip.handle.message(body)
    try:
        return await leg.sip.handle.wait_event(done, timeout, since, fail_on=("error",))
    except JanusError as exc:
        raise StepError(f"{step}: {exc}") from None


@action("janus_message")
class JanusMessage(Action):
    """The app sends a SIP MESSAGE with `text`: inside the call's dialog, or to `uri`."""

    peer: str
    text: str
    uri: str | None = None
    timeout: float = 5.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        body: dict[str, Any] = {"request": "message", "content": self.text}
        if self.uri:
            body["uri"] = self.uri
        t0 = time.time()
        await request(ctx, self.peer, "janus_message", body, "messagesent", self.timeout)
        return {"sent_after_s": round(time.time() - t0, 3), "text": self.text}


@action("janus_dtmf_info")
class JanusDtmfInfo(Action):
    """The app sends each of `digits` as a SIP INFO (application/dtmf-relay) in the call."""

    peer: str
    digits: str
    duration_ms: int = 160
    timeout: float = 5.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        if not re.fullmatch(r"[0-9A-D*#]+", self.digits):
            raise StepError(f"janus_dtmf_info: {self.digits!r}: digits are 0-9 A-D * #")
        for d in self.digits:
            body = {"request": "dtmf_info", "digit": d, "duration": self.duration_ms}
            await request(ctx, self.peer, "janus_dtmf_info", body, "dtmfsent", self.timeout)
        return {"digits": self.digits}


@action("janus_hold")
class JanusHold(Action):
    """The app puts the call on hold (`direction`: the SDP direction Janus offers the SIP side,
    sendonly by default) or resumes it (`resume: true`): a re-INVITE on the SIP leg."""

    peer: str
    resume: bool = False
    direction: Literal["sendonly", "recvonly", "inactive"] | None = None
    timeout: float = 5.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        body: dict[str, Any] = {"request": "unhold" if self.resume else "hold"}
        if self.direction and not self.resume:
            body["direction"] = self.direction
        done = "resuming" if self.resume else "holding"
        t0 = time.time()
        await request(ctx, self.peer, "janus_hold", body, done, self.timeout)
        return {"acknowledged_after_s": round(time.time() - t0, 3), **body}


@action("janus_transfer")
class JanusTransfer(Action):
    """The app transfers the call's far end to `uri` (blind transfer: a REFER in the dialog)."""

    peer: str
    uri: str
    timeout: float = 5.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        body = {"request": "transfer", "uri": self.uri}
        await request(ctx, self.peer, "janus_transfer", body, "transferring", self.timeout)
        return {"uri": self.uri}


@action("janus_event")
class JanusEventStep(Action):
    """Wait until the SIP plugin tells the app `event` (message, info, dtmf, transfer, ...)
    whose result fields match `fields` (key -> regex); the step detail is the event."""

    peer: str
    event: str
    fields: dict[str, str] = {}
    timeout: float = 5.0

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.janus_client import JanusError

        leg = leg_of(ctx, self.peer, "janus_event")

        def match(ev: JanusEvent) -> bool:
            result = ev.data.get("result", {})
            return all(re.search(rx, str(result.get(k, ""))) for k, rx in self.fields.items())

        try:
            ev = await leg.sip.handle.wait_event(
                self.event, self.timeout, 0, fail_on=(), match=match
            )
        except JanusError as exc:
            raise StepError(f"janus_event: {exc}") from None
        return {"event": ev.kind, "result": ev.data.get("result", {})}
