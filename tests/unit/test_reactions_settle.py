"""A step that ends a call waits for an app's ICE restart in flight (harness/actions/reactions.py)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

from harness.actions.reactions import ReactionSpec, settle_reactions
from harness.actions.registry import ACTIONS
from harness.scenario.context import ScenarioContext


def test_hangup_steps_end_the_call() -> None:
    assert ACTIONS["hangup"].ends_call and ACTIONS["janus_hangup"].ends_call
    assert not ACTIONS["wait"].ends_call


def _context(extras: dict[str, Any]) -> ScenarioContext:
    # settle_reactions reads ctx.extras only; a real context needs a scenario and a lab
    return cast(ScenarioContext, SimpleNamespace(extras=extras))


def _ctx(*reactions: SimpleNamespace) -> ScenarioContext:
    """Reactions as doubles too: settle_reactions reads their `idle` and `spec` only."""
    return _context({"reactions": {f"p{i}": r for i, r in enumerate(reactions)}})


def test_settle_waits_for_the_restart_in_flight() -> None:
    async def main() -> float:
        busy = SimpleNamespace(idle=asyncio.Event(), spec=ReactionSpec(timeout=5))
        idle = SimpleNamespace(idle=asyncio.Event(), spec=ReactionSpec(timeout=5))
        idle.idle.set()
        asyncio.get_running_loop().call_later(0.3, busy.idle.set)  # the restart is logged
        t = time.monotonic()
        await settle_reactions(_ctx(idle, busy))
        assert busy.idle.is_set()
        return time.monotonic() - t

    waited = asyncio.run(main())
    assert 0.25 <= waited < 2.0, waited


def test_settle_is_bounded_by_the_restarts_budget() -> None:
    async def main() -> float:
        stuck = SimpleNamespace(idle=asyncio.Event(), spec=ReactionSpec(timeout=-4.7))
        t = time.monotonic()
        await settle_reactions(_ctx(stuck))  # budget timeout + 5 s = 0.3 s
        return time.monotonic() - t

    waited = asyncio.run(main())
    assert 0.25 <= waited < 2.0, waited


def test_settle_without_reactions_returns_at_once() -> None:
    asyncio.run(settle_reactions(_context({})))
