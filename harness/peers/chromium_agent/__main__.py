"""`python -m harness.peers.chromium_agent --control PATH --name NAME`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from .agent import ChromiumAgent


async def main(args: argparse.Namespace) -> None:
    agent = ChromiumAgent(args.name, args.control, args.workdir or Path.cwd())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.server.stopped.set)
    await agent.run()


def cli() -> None:
    parser = argparse.ArgumentParser(description="Headless Chromium WebRTC peer agent")
    parser.add_argument("--control", type=Path, required=True, help="unix socket to serve")
    parser.add_argument("--name", required=True, help="peer name, for logs")
    parser.add_argument("--workdir", type=Path, help="profile, tone files (default: cwd)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(message)s")
    asyncio.run(main(args))


if __name__ == "__main__":
    cli()
