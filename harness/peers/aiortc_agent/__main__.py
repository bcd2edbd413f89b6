"""Entry point: serve one aiortc peer on a control socket until `shutdown` or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from harness.peers.aiortc_agent import keylog
from harness.peers.aiortc_agent.peer import AiortcPeer
from harness.peers.control import ControlServer


async def serve(control: Path, name: str) -> None:
    keylog.install(Path.cwd() / "keylog.txt")  # the agent runs in its work directory
    peer = AiortcPeer(name)
    server = ControlServer(control, peer)
    peer.server = server
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stopped.set)
    await server.start()
    logging.getLogger(__name__).info("%s: control socket %s", name, control)
    try:
        await server.stopped.wait()
    finally:
        await peer.close()
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.peers.aiortc_agent")
    parser.add_argument("--control", type=Path, required=True, help="unix socket path")
    parser.add_argument("--name", default="aiortc")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    asyncio.run(serve(args.control, args.name))


if __name__ == "__main__":
    main()
