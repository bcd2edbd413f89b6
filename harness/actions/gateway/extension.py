"""Steps a SIP extension (baresip, through its ctrl_tcp interface) takes during a scenario."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from harness.actions.gateway.common import component
from harness.actions.registry import Action, action
from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.baresip import Baresip
    from harness.scenario.context import ScenarioContext


def extension(ctx: ScenarioContext, name: str, step: str) -> Baresip:
    ext: Baresip = component(ctx, name, "baresip", step)
    if ext.options.control_port is None:
        raise StepError(f"{step}: {name} has no control interface (set options.control_port)")
    return ext


@action("sip_dial")
class SipDial(Action):
    """Extension `component` calls `user` at its registrar (or `uri`): the SIP side is the caller.

    Returns once baresip took the command; the callee's step (e.g. `janus_answer`) waits
    for the INVITE.
    """

    component: str
    user: str | None = None
    uri: str | None = None

    def components(self) -> list[str]:
        return [self.component]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        ext = extension(ctx, self.component, "sip_dial")
        if (self.user is None) == (self.uri is None):
            raise StepError("sip_dial: give either `user` (at the registrar) or `uri`")
        if self.uri is not None:
            uri = self.uri
        elif ext.options.registrar:
            uri = f"sip:{self.user}@{ext.options.registrar.split(':')[0]}"
        else:
            raise StepError(f"sip_dial: {self.component} has no registrar; give `uri`")
        t0 = time.time()
        reply = await ext.control().command("dial", uri, timeout=self.timeout)
        return {"uri": uri, "reply": reply, "took_s": round(time.time() - t0, 3)}
