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


@action("sip_ext_command")
class SipExtCommand(Action):
    """Any baresip command on extension `component` mid-call, e.g. `sndcode` (DTMF, RFC 4733
    when negotiated), `hold`, `resume`, `transfer` (a REFER to the far end)."""

    component: str
    command: str
    params: str = ""

    def components(self) -> list[str]:
        return [self.component]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.components.baresip_ctrl import BaresipCommandError

        ext = extension(ctx, self.component, "sip_ext_command")
        try:
            reply = await ext.control().command(self.command, self.params, timeout=self.timeout)
        except BaresipCommandError as exc:
            raise StepError(f"sip_ext_command: {exc}") from None
        return {"command": self.command, "params": self.params, "reply": reply}


@action("sip_send_message")
class SipSendMessage(Action):
    """A SIP MESSAGE (text/plain `text`) from node `node` to `user` at the `registrar`
    (outside any dialog), sent by the harness's raw SIP client over TCP; passes on a 2xx."""

    node: str
    user: str
    text: str
    registrar: str = "kamailio"
    timeout: float = 5.0

    def components(self) -> list[str]:
        return [self.registrar]

    async def execute(self, ctx: ScenarioContext) -> dict[str, Any]:
        from harness.actions.gateway.sip_raw import request_once

        kam = component(ctx, self.registrar, "kamailio", "sip_send_message")
        if self.node not in ctx.lab.topology.nodes:
            raise StepError(f"sip_send_message: no node {self.node!r}")
        local = str(ctx.lab.topology.node(self.node).iface().address)
        target = (kam.listen_address(), kam.options.sip_port)
        uri = f"sip:{self.user}@{kam.listen_address()}"
        status, reason, seen = await request_once(
            ctx.lab.netns(self.node),
            local,
            target,
            "MESSAGE",
            uri,
            self.text,
            self.timeout,
            ctype="text/plain",
            user=self.node,
        )
        if not 200 <= status < 300:
            raise StepError(f"sip_send_message: {uri} answered {status} {reason}: {seen}")
        return {"uri": uri, "status": status, "reason": reason}
