"""Helpers the peer tests share: run a coroutine with a deadline, a lab with coturn on `server`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from harness.components.coturn import Coturn

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
T = TypeVar("T")


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextmanager
def lab_with_turn(topology: str, **turn_options: Any) -> Iterator[tuple[Any, Coturn]]:
    from harness.lab import Lab

    with Lab(TOPOLOGIES / f"{topology}.yaml") as lab:
        turn = Coturn("turn", "server", turn_options)
        turn.start(lab)
        try:
            yield lab, turn
        finally:
            turn.stop()
