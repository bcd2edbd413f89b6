"""aiortc peers: call -> connected and ICE restart -> reconnected, direct and relayed; memory.

    .venv/bin/python benchmarks/bench_peers.py [--calls 5] [--json]

One open-internet lab, coturn on `server`, two aiortc agents (peer-a, peer-b) per
call, a 440/660 Hz tone each way. "direct" uses host candidates, "relayed" sets
iceTransportPolicy relay on both sides (relay <-> relay through coturn over UDP).
Times are the agents' own event stamps: from the harness's first signalling
command to the later side's `connectionstatechange: connected` (call), or to the
later side's `selectedpair` of the new generation (restart). Memory is the RSS
of each agent's process group after 3 s of audio. Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness.components.coturn import Coturn
from harness.lab import Lab
from harness.peers.launch import LaunchedPeer, start_peer
from harness.peers.signaling import connect_pair, restart_ice

ROOT = Path(__file__).resolve().parents[1]


def group_rss_kib(pgid: int) -> int:
    """Sum of VmRSS over every process in process group `pgid` (the agent and its wrappers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return total


async def one_call(lab: Lab, servers: list[Any], policy: str) -> dict[str, float]:
    a, b = await asyncio.gather(
        start_peer(lab, "peer-a", "aiortc", "alice"), start_peer(lab, "peer-b", "aiortc", "bob")
    )
    try:
        for peer, hz in ((a, 440), (b, 660)):
            await peer.call(
                "configure",
                ice_servers=servers,
                ice_transport_policy=policy,
                audio={"tone_hz": hz},
                datachannel=peer is a,
            )
        call = await connect_pair(a, b)
        await asyncio.sleep(3.0)
        rss = [group_rss_kib(p.process.pid) for p in (a, b)]
        restart = await restart_ice(a, b)
        await asyncio.sleep(0.5)
        stats = await b.call("stats")
        if abs((stats["media"]["audio"]["tone_hz"] or 0) - 440) > 5:
            raise RuntimeError(f"no tone after the restart: {stats['media']}")
        return {
            "call_ms": call.elapsed() * 1000,
            "restart_ms": restart.elapsed() * 1000,
            "rss_mib": statistics.mean(rss) / 1024,
        }
    finally:
        await asyncio.gather(*(p.stop() for p in (a, b) if isinstance(p, LaunchedPeer)))


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }


async def bench(
    lab: Lab,
    turn: Coturn,
    calls: int,
    call: Callable[..., Awaitable[dict[str, float]]],
    timeout: float,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode, servers, policy in (
        ("direct", [], "all"),
        ("relayed", [turn.ice_server("udp")], "relay"),
    ):
        runs = [await asyncio.wait_for(call(lab, servers, policy), timeout) for _ in range(calls)]
        results[mode] = {key: summarize([r[key] for r in runs]) for key in runs[0]}
    return results


def main(
    call: Callable[..., Awaitable[dict[str, float]]] | None = None,
    *,
    default_calls: int = 5,
    max_calls: int = 50,
    timeout: float = 60,
    title: str = "",
) -> None:
    """Direct and relayed calls on open-internet with coturn; `call` runs one call (also
    used by bench_peers_chromium.py with its own `one_call`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--calls", type=int, default=default_calls, help=f"calls per mode (1-{max_calls})"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    calls = max(1, min(args.calls, max_calls))
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    with Lab(ROOT / "topologies" / "open-internet.yaml") as lab:
        turn = Coturn("turn", "server")
        turn.start(lab)
        try:
            results = asyncio.run(bench(lab, turn, calls, call or one_call, timeout))
        finally:
            turn.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{calls} calls per mode{title}; median (min-max)")
    for mode, metrics in results.items():
        cells = [f"{k} {v['median']} ({v['min']}-{v['max']})" for k, v in metrics.items()]
        print(f"  {mode:8} " + "  ".join(cells))


if __name__ == "__main__":
    main()
