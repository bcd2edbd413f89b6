"""Start a peer agent inside a lab node and hand back its connected client."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.peers.client import PeerClient, PeerError

if TYPE_CHECKING:
    from harness.lab.lab import Lab
    from harness.runtime.base import NodeProcess

KINDS = ("aiortc", "chromium")


class LaunchedPeer(PeerClient):
    """A PeerClient that also owns the agent process it talks to."""

    def __init__(self, name: str, socket_path: Path, process: NodeProcess) -> None:
        super().__init__(name, socket_path)
        self.process = process

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the agent to shut down, then make sure the process is gone."""
        if self.process.alive():
            with contextlib.suppress(PeerError):
                await self.call("shutdown", timeout=timeout)
        await self.close()
        self.process.stop()


async def start_peer(
    lab: Lab, node: str, kind: str, name: str, *, timeout: float = 20.0
) -> LaunchedPeer:
    """Spawn `python -m harness.peers.<kind>_agent` in `node` and connect to its control socket."""
    if kind not in KINDS:
        raise PeerError(f"{name}: unknown peer kind {kind!r} (one of {', '.join(KINDS)})")
    workdir = lab.workdir(node, name)
    sock = lab.socket_path(node, name, "control.sock")
    argv = [sys.executable, "-m", f"harness.peers.{kind}_agent", "--control", sock, "--name", name]
    proc = lab.spawn(node, argv, name=name, cwd=workdir)
    client = LaunchedPeer(name, sock, proc)
    try:
        await client.connect(timeout=timeout, alive=proc.alive)
    except PeerError as exc:
        proc.stop()
        raise PeerError(f"{exc}\n--- {name} log tail ---\n{proc.log_tail(30)}") from None
    return client
