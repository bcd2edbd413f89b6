"""Chromium peers: launch, call -> connected, ICE restart -> reconnected; memory per peer.

    .venv/bin/python benchmarks/bench_peers_chromium.py [--calls 3] [--json]

(`one_call` takes any peer kind: bench_peers_browsers.py runs it for aiortc,
Chromium and Firefox side by side.)

One open-internet lab, coturn on `server`, two Chromium agents (peer-a, peer-b) per
call (the most this machine runs at once), a 440/880 Hz tone each way. "direct"
uses host candidates, "relayed" sets iceTransportPolicy relay on both sides.
Times are the agents' own event stamps, measured like benchmarks/bench_peers.py
(aiortc): from the harness's first signalling command to the later side's
`connectionstatechange: connected` (call), or to the later side's `selectedpair`
of the new generation (restart). `launch_ms` is `configure` on a fresh agent (it
starts the browser). Memory is summed over each agent's process tree (Python
agent, Playwright's node driver, every Chromium process) after 3 s of audio:
RSS counts shared pages once per process, PSS shares them out. Needs root.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path
from typing import Any

from harness.lab import Lab
from harness.peers.launch import LaunchedPeer, start_peer
from harness.peers.signaling import connect_pair, restart_ice

ROOT = Path(__file__).resolve().parents[1]
TONE_A, TONE_B = 440.0, 880.0


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants: Playwright starts the driver and Chromium in
    process groups of their own, so the agent's group alone misses them."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def tree_memory_kib(root: int) -> dict[str, int]:
    """RSS and PSS (KiB) summed over `root`'s process tree, and how many processes it has."""
    rss = pss = count = 0
    for pid in process_tree(root):
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        count += 1
        for line in rollup:
            key, _, rest = line.partition(":")
            if key == "Rss":
                rss += int(rest.split()[0])
            elif key == "Pss":
                pss += int(rest.split()[0])
    return {"rss": rss, "pss": pss, "processes": count}


async def hears(peer: LaunchedPeer, hz: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        audio = (await peer.call("stats"))["media"].get("audio") or {}
        if audio.get("tone_hz") is not None and abs(audio["tone_hz"] - hz) < 5:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{peer.name} does not hear {hz} Hz: {audio}")
        await asyncio.sleep(0.2)


def tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of `root`'s process tree so far."""
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


async def one_call(
    lab: Lab, servers: list[Any], policy: str, kind: str = "chromium"
) -> dict[str, float]:
    a, b = await asyncio.gather(
        start_peer(lab, "peer-a", kind, f"{kind}-a"),
        start_peer(lab, "peer-b", kind, f"{kind}-b"),
    )
    try:
        t0 = time.perf_counter()
        for peer, hz in ((a, TONE_A), (b, TONE_B)):  # one after the other: launch time alone
            await peer.call(
                "configure",
                ice_servers=servers,
                ice_transport_policy=policy,
                audio={"tone_hz": hz},
                datachannel=peer is a,
            )
        launch_ms = (time.perf_counter() - t0) / 2 * 1000
        call = await connect_pair(a, b)
        cpu0, t_cpu = [tree_cpu_s(p.process.pid) for p in (a, b)], time.perf_counter()
        await asyncio.sleep(3.0)
        cpu = [tree_cpu_s(p.process.pid) for p in (a, b)]
        busy = (sum(cpu) - sum(cpu0)) / 2 / (time.perf_counter() - t_cpu) * 100
        mem = [tree_memory_kib(p.process.pid) for p in (a, b)]
        restart = await restart_ice(a, b)
        await asyncio.gather(hears(a, TONE_B), hears(b, TONE_A))
        return {
            "launch_ms": launch_ms,
            "call_ms": call.elapsed() * 1000,
            "restart_ms": restart.elapsed() * 1000,
            "rss_mib": statistics.mean(m["rss"] for m in mem) / 1024,
            "pss_mib": statistics.mean(m["pss"] for m in mem) / 1024,
            "processes": statistics.mean(m["processes"] for m in mem),
            "cpu_pct": busy,
        }
    finally:
        await asyncio.gather(a.stop(), b.stop())


if __name__ == "__main__":
    from bench_peers import main  # the shared driver: direct and relayed, summaries, output

    main(one_call, default_calls=3, max_calls=20, timeout=90, title=", two Chromium peers")
