"""What steps see while a scenario runs."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.components.base import Component
    from harness.config.scenario import PeerSpec, Scenario
    from harness.lab import Lab
    from harness.peers.client import PeerClient


@dataclass
class ScenarioContext:
    scenario: Scenario
    lab: Lab
    seed: int
    peers: dict[str, PeerClient] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)
    """Who is in a call with whom (both directions)."""
    t0: float = field(default_factory=time.time)
    step_started: float = 0.0
    shapers: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    """Per-scenario state of step families (e.g. Janus sessions), keyed by family."""
    timeline: Any = None
    """The `conditions:` timeline (harness/conditions/timeline.py), when the scenario has one."""
    peer_stats: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each peer's stats after each step (peer checks read these)."""
    teardown: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    """What was started registers its undoing here; the runner leaves it whatever happens."""
    steps_done: dict[int, asyncio.Event] = field(default_factory=dict)
    """Step number (1-based) -> set once that step completed (timeline triggers wait on it)."""

    def step_done(self, number: int) -> asyncio.Event:
        return self.steps_done.setdefault(number, asyncio.Event())

    versions: dict[str, str] = field(default_factory=dict)
    """Component or peer name -> "kind version", as the running program reported it."""

    def peer(self, name: str) -> PeerClient:
        try:
            return self.peers[name]
        except KeyError:
            raise HarnessError(f"no peer {name!r} is running") from None

    def peer_spec(self, name: str) -> PeerSpec:
        return self.scenario.spec.peers[name]

    async def ice_state(self, name: str) -> str:
        stats = await self.peer(name).call("stats")
        return str(stats.get("ice", {}).get("state"))

    async def is_connected(self, name: str) -> bool:
        return await self.ice_state(name) in ("connected", "completed")

    def image_of(self, explicit: str | None, kind: str) -> str | None:
        """The image a component or peer runs from: its own `image:`, else the default image
        of its kind when the scenario's runtime is docker, else None (a host process)."""
        from harness.images.catalog import KINDS

        spec = self.scenario.spec
        if explicit or spec.runtime != "docker" or kind not in KINDS:
            return explicit  # a kind with no image of ours (process) stays on the host
        from harness.runtime.engine import default_image

        return default_image(kind, spec.suite)

    def check_components(self) -> None:
        for comp in self.components.values():
            comp.check_alive()
