"""End a step at once when what it waits on died, instead of waiting out its timeout.

A step that waits for media from a peer whose agent crashed, or for a SIP answer
from a gateway that exited, cannot succeed any more; the watchdog races every step
and fails it with the process that died and its log tail. Processes the harness
stopped on purpose (a component restart step) are not deaths.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from harness.errors import ComponentError, HarnessError

if TYPE_CHECKING:
    from harness.scenario.context import ScenarioContext

T = TypeVar("T")
POLL_S = 0.1


def dead(ctx: ScenarioContext) -> HarnessError | None:
    """The first component or peer process that died, as the error to report."""
    for comp in ctx.components.values():
        proc = getattr(comp, "proc", None)
        if proc is not None and proc.died():
            return ComponentError(
                comp.name, f"died with status {proc.returncode} during the step", proc.log_tail(30)
            )
    for name, peer in ctx.peers.items():
        proc = getattr(peer, "process", None)
        if proc is not None and proc.died():
            return HarnessError(
                f"peer {name}: its agent died with status {proc.returncode} during the step"
                f"\n--- {name} log tail ---\n{proc.log_tail(20)}"
            )
    return None


async def guarded(ctx: ScenarioContext, step: Awaitable[T]) -> T:
    """Await `step`; if a component or peer dies first, cancel it and raise why."""
    task = asyncio.ensure_future(step)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_S)
            if done:
                return task.result()
            err = dead(ctx)
            if err is not None:
                raise err
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
