"""Condition changes over time: at given seconds from a start, or when something happens
(a peer's ICE or connection state, a step completing), optionally after a delay.

The timeline sleeps until shortly before a step and then hands the engine the
exact wall-clock instant (`at`), so a change lands on time to the engine's own
timer accuracy, not asyncio's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import Field, model_validator

from harness.conditions.model import CONDITION_FIELDS, Fault, LinkConditions, LinkSpec, Strict

LEAD = 0.25  # s: how long before a step its command goes to the engine (absorbs stalls)
ACTIONS = ("set", "ramp", "blackout", "restore", "fault", "clear_faults")


class Ramp(Strict):
    """Move from the current conditions to `to` in `steps` equal steps over `over` seconds."""

    to: LinkSpec
    over: float = Field(gt=0)
    steps: int = Field(default=10, ge=1, le=1000)


class Trigger(Strict):
    """`on:` what fires a step: a peer's state (`peer` + `ice` or `connection`) or the end
    of step number `step` (1-based), then `delay` seconds later. It fires once."""

    peer: str | None = None
    ice: str | None = None
    """An ICE connection state of `peer` (checking, connected, disconnected, failed, ...)."""
    connection: str | None = None
    """A connection state of `peer` (connecting, connected, disconnected, failed, ...)."""
    step: int | None = Field(default=None, ge=1)
    delay: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_event(self) -> Trigger:
        given = [k for k in ("ice", "connection", "step") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `ice`, `connection` (with `peer`) or `step`")
        if given[0] != "step" and self.peer is None:
            raise ValueError(f"`{given[0]}` needs `peer`")
        if given[0] == "step" and self.peer is not None:
            raise ValueError("`step` takes no `peer`")
        return self

    @property
    def event(self) -> tuple[str, str] | None:
        """(peer event kind, state) this trigger waits for, or None for a step trigger."""
        if self.ice is not None:
            return "iceconnectionstatechange", self.ice
        if self.connection is not None:
            return "connectionstatechange", self.connection
        return None

    def __str__(self) -> str:
        what = f"step {self.step} done" if self.step else f"{self.peer} {self.event}"
        return what + (f" +{self.delay:g}s" if self.delay else "")


Waiter = Callable[[Trigger], Awaitable[None]]
"""Returns once a trigger's event happened (the scenario runner provides it)."""


class TimelineStep(Strict):
    """One `conditions:` step of a scenario: when, which link, what."""

    at: float | None = Field(default=None, ge=0)
    on: Trigger | None = None
    link: str
    """"node.iface", e.g. peer-a.eth0."""
    set: LinkSpec | None = None
    ramp: Ramp | None = None
    blackout: float | None = Field(default=None, gt=0)
    restore: bool = False
    fault: Fault | None = None
    clear_faults: bool = False

    @model_validator(mode="after")
    def _one_when_one_what(self) -> TimelineStep:
        if (self.at is None) == (self.on is None):
            raise ValueError("give exactly one of `at` (seconds) or `on` (a trigger)")
        what = [a for a in ACTIONS if getattr(self, a) not in (None, False)]
        if len(what) != 1:
            raise ValueError(f"give exactly one of {', '.join(ACTIONS)}")
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) not in (None, False))


def interpolate(a: LinkConditions, b: LinkConditions, f: float) -> LinkConditions:
    """Conditions a fraction `f` of the way from `a` to `b` (numbers move, the rest jumps at 1)."""
    if f >= 1:
        return b
    values: dict[str, Any] = {}
    for name in CONDITION_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, int | float) and isinstance(y, int | float) and not isinstance(x, bool):
            v = x + (y - x) * f
            values[name] = round(v) if isinstance(x, int) and isinstance(y, int) else v
        else:
            values[name] = x
    return LinkConditions(**values)


class Timeline:
    """Runs steps against shapers keyed by "node.iface"."""

    def __init__(self, shapers: dict[str, Any], steps: list[TimelineStep]) -> None:
        missing = sorted({s.link for s in steps} - set(shapers))
        if missing:
            raise ValueError(f"timeline steps name links that are not shaped: {', '.join(missing)}")
        self.shapers = shapers
        self.steps = steps
        self.applied: list[tuple[TimelineStep, int]] = []
        """(step, wall-clock ns the engine applied it), in order."""
        self.fired: list[tuple[TimelineStep, float]] = []
        """(`on` step, wall-clock time its trigger fired), in order."""

    async def run(self, start: float | None = None, wait: Waiter | None = None) -> None:
        """Run every `at` step, `at` seconds after `start` (time.time(); default now), and
        every `on` step when `wait` says its trigger fired (plus its delay)."""
        start = time.time() if start is None else start
        triggered = [s for s in self.steps if s.on is not None]
        if triggered and wait is None:
            raise ValueError("`on:` steps need a waiter for their triggers")
        tasks = [asyncio.create_task(self._on(s, wait)) for s in triggered if wait is not None]
        try:
            for step in sorted(
                (s for s in self.steps if s.at is not None), key=lambda s: s.at or 0
            ):
                assert step.at is not None
                await self._apply(step, start + step.at)
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _on(self, step: TimelineStep, wait: Waiter) -> None:
        assert step.on is not None
        await wait(step.on)
        fired = time.time()
        self.fired.append((step, fired))
        await self._apply(step, fired + step.on.delay)

    async def _apply(self, step: TimelineStep, when: float) -> None:
        await asyncio.sleep(max(0.0, when - LEAD - time.time()))
        sh = self.shapers[step.link]
        at = when if when > time.time() else None
        if step.action == "ramp":
            await self._ramp(step, sh, when)
            return
        if step.action == "set":
            t = sh.set(step.set, at=at)
        elif step.action == "blackout":
            t = sh.blackout(step.blackout, at=at)
        elif step.action == "restore":
            t = sh.restore(at=at)
        elif step.action == "fault":
            t = sh.fault(step.fault, at=at)
        else:
            t = sh.clear_faults(at=at)
        self.applied.append((step, t))

    async def _ramp(self, step: TimelineStep, sh: Any, when: float) -> None:
        assert step.ramp is not None
        r = step.ramp
        (up0, down0), (up1, down1) = sh.current, r.to.resolve()
        first = None
        for i in range(1, r.steps + 1):
            t_step = when + r.over * i / r.steps
            await asyncio.sleep(max(0.0, t_step - LEAD - time.time()))
            f = i / r.steps
            t = sh.set(
                up=interpolate(up0, up1, f),
                down=interpolate(down0, down1, f),
                at=t_step if t_step > time.time() else None,
            )
            first = first if first is not None else t
        self.applied.append((step, first or 0))
