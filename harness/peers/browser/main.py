"""`python -m harness.peers.<kind>_agent --control PATH --name NAME` for browser kinds."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from .agent import BrowserAgent, Engine


async def _main(args: argparse.Namespace, engine: Engine) -> None:
    agent = BrowserAgent(args.name, args.control, args.workdir or Path.cwd(), engine)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.server.stopped.set)
    await agent.run()


def cli(make_engine: Callable[[], Engine], description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--control", type=Path, required=True, help="unix socket to serve")
    parser.add_argument("--name", required=True, help="peer name, for logs")
    parser.add_argument("--workdir", type=Path, help="profile, tone files (default: cwd)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {args.name} %(message)s")
    asyncio.run(_main(args, make_engine()))
