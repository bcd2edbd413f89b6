"""Start a peer agent inside a lab node and hand back its connected client."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.logfinding import LogFinding
from harness.peers.client import PeerClient, PeerError

if TYPE_CHECKING:
    from harness.lab.lab import Lab
    from harness.runtime.base import NodeProcess

KINDS = ("aiortc", "chromium", "firefox")
#: The Python of a peer image (ci/images/<kind>), which runs the agent from our source.
AGENT_PROGRAM = "python3"
HARNESS_SOURCE = Path(__file__).resolve().parents[1]


class LaunchedPeer(PeerClient):
    """A PeerClient that also owns the agent process it talks to."""

    def __init__(self, name: str, socket_path: Path, process: NodeProcess, kind: str = "") -> None:
        super().__init__(name, socket_path)
        self.process = process
        self.kind = kind

    def log_findings(self) -> list[LogFinding]:
        """What the agent's whole log shows about the run: its stack's documented races
        (aiortc: aioice's nomination race, aioice_diag.py)."""
        if self.kind != "aiortc":
            return []
        from harness.peers.aioice_diag import nomination_race

        found = nomination_race(self.process.log_text())
        return [found] if found else []

    async def stop(self, timeout: float = 5.0) -> None:
        """Ask the agent to shut down, then make sure the process is gone."""
        if self.process.alive():
            with contextlib.suppress(PeerError):
                await self.call("shutdown", timeout=timeout)
        await self.close()
        self.process.stop()


def peer_version(kind: str, image: str | None) -> str:
    """The version of the peer's engine (Chromium, aiortc) that the agent runs."""
    from harness.components.versions import host_version, image_version

    return (image_version(kind, image) if image else host_version(kind)) or "not found"


async def start_peer(
    lab: Lab,
    node: str,
    kind: str,
    name: str,
    *,
    timeout: float = 20.0,
    image: str | None = None,
) -> LaunchedPeer:
    """Spawn `python -m harness.peers.<kind>_agent` in `node` and connect to its control socket.

    With `image`, the agent runs on the image's Python and browser build from this very
    source tree (mounted), so the engine is what varies, not the agent."""
    if kind not in KINDS:
        raise PeerError(f"{name}: unknown peer kind {kind!r} (one of {', '.join(KINDS)})")
    workdir = lab.workdir(node, name)
    sock = lab.socket_path(node, name, "control.sock")  # fits sun_path
    python, env, mounts = sys.executable, None, [sock.parent]
    if image is not None:
        python = AGENT_PROGRAM
        env = {"PYTHONPATH": str(HARNESS_SOURCE.parent), "PYTHONDONTWRITEBYTECODE": "1"}
        mounts.append(HARNESS_SOURCE)
    argv: list[str | Path] = [python, "-m", f"harness.peers.{kind}_agent", "--control", sock]
    argv += ["--name", name]
    try:
        proc = lab.spawn(node, argv, name=name, cwd=workdir, env=env, image=image, mounts=mounts)
    except HarnessError as exc:
        raise PeerError(f"{name}: {exc}") from None
    client = LaunchedPeer(name, sock, proc, kind)
    try:
        await client.connect(timeout=timeout, alive=proc.alive)
    except PeerError as exc:
        proc.stop()
        status = f" (exit status {proc.returncode})" if not proc.alive() else ""
        raise PeerError(f"{exc}{status}\n--- {name} log tail ---\n{proc.log_tail(30)}") from None
    return client
