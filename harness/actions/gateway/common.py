"""Helpers every gateway step shares: component look-up, SDP bits, waiting for ICE."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from harness.actions.steps import StepError

if TYPE_CHECKING:
    from harness.components.kamailio import Kamailio
    from harness.peers.client import PeerClient
    from harness.scenario.context import ScenarioContext


def component(ctx: ScenarioContext, name: str, kind: str, step: str) -> Any:
    comp = ctx.components.get(name)
    if comp is None or comp.kind != kind:
        raise StepError(f"{step}: no {kind} component named {name!r} in this scenario")
    return comp


def sip_registrar(ctx: ScenarioContext, name: str, step: str) -> Any:
    """A registrar: Kamailio, or any component that serves SIP (`sip_port` of a PBX run
    through the generic `container`/`process` kinds)."""
    comp = ctx.components.get(name)
    if comp is None or getattr(comp, "uri", None) is None:
        raise StepError(f"{step}: no SIP registrar component named {name!r} in this scenario")
    return comp


def ufrag(sdp: str) -> str | None:
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            return line.split(":", 1)[1].strip()
    return None


def candidate_types(sdp: str) -> list[str]:
    """`typ` of each a=candidate line, in order (what the far side offered to be reached on)."""
    out = []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            words = line.split()
            out.append(f"{words[4]}:{words[5]} {words[7]}" if len(words) > 7 else line)
    return out


async def wait_connected(peer: PeerClient, since: float, timeout: float) -> float:
    """Time the peer's ICE reached connected/completed (aiortc says completed, Chromium connected)."""
    waits = [
        asyncio.create_task(peer.wait_event("iceconnectionstatechange", timeout, since, state=s))
        for s in ("connected", "completed")
    ]
    try:
        done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is None:
                return task.result().t
        if done:
            raise next(iter(done)).exception()  # type: ignore[misc]
        raise StepError(f"{peer.name}: ICE not connected within {timeout:.0f} s")
    finally:
        for task in waits:
            task.cancel()
        for task in waits:
            with contextlib.suppress(BaseException):
                await task


async def callee_uri(ctx: ScenarioContext, registrar: Kamailio, callee: str, timeout: float) -> str:
    """SIP URI of extension `callee`: its AOR at `registrar` once it registered, else direct."""
    ext: Any = ctx.components[callee]  # a SIP extension or PBX: options and address vary
    if hasattr(ext, "wait_registered") and getattr(ext.options, "registrar", None):
        await asyncio.to_thread(ext.wait_registered, min(timeout, 10.0))
        return f"sip:{ext.options.user}@{registrar.listen_address()}"
    port = getattr(ext.options, "sip_port", 5060)
    return f"sip:{callee}@{ext.listen_address()}:{port}"
