"""aiortc, Chromium and Firefox side by side in one run: launch, call -> connected,
ICE restart -> reconnected, direct and relayed; memory and CPU per peer.

    .venv/bin/python benchmarks/bench_peers_browsers.py [--calls 3] [--kinds aiortc,chromium,firefox] [--json]

One open-internet lab, coturn on `server`; per call two agents of one kind
(peer-a, peer-b), a 440/880 Hz tone each way; the kinds take turns call by call
so machine noise hits them alike. Measured as bench_peers_chromium.py does
(that file's `one_call`): `launch_ms` is `configure` on a fresh agent (for the
browsers: start the browser and load the page), `call_ms` from the first
signalling command to the later side connected, `restart_ms` to the later
side's selected pair of the new generation; `rss_mib`/`pss_mib` summed over an
agent's process tree after 3 s of audio, `cpu_pct` that tree's CPU (% of one
core) during those 3 s. Ratios are to Chromium's medians. Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

from bench_peers import ROOT, summarize
from bench_peers_chromium import one_call

from harness.components.coturn import Coturn
from harness.lab import Lab

KINDS = ("aiortc", "chromium", "firefox")


async def bench(lab: Lab, turn: Coturn, calls: int, kinds: list[str]) -> dict[str, Any]:
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(calls):
        for mode, servers, policy in (
            ("direct", [], "all"),
            ("relayed", [turn.ice_server("udp")], "relay"),
        ):
            for kind in kinds:
                r = await asyncio.wait_for(one_call(lab, servers, policy, kind), 120)
                runs.setdefault((kind, mode), []).append(r)
    return {
        f"{kind} {mode}": {key: summarize([r[key] for r in rs]) for key in rs[0]}
        for (kind, mode), rs in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3, help="calls per kind and mode (1-20)")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    with Lab(ROOT / "topologies" / "open-internet.yaml") as lab:
        turn = Coturn("turn", "server")
        turn.start(lab)
        try:
            results = asyncio.run(bench(lab, turn, max(1, min(args.calls, 20)), kinds))
        finally:
            turn.stop()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.calls} calls per kind and mode, kinds interleaved; median (min-max) [x Chromium]")
    for name, metrics in results.items():
        ref = results.get(f"chromium {name.split()[1]}", {})
        cells = []
        for k, v in metrics.items():
            ratio = ref.get(k, {}).get("median")
            x = f" [x{v['median'] / ratio:.2f}]" if ratio else ""
            cells.append(f"{k} {v['median']} ({v['min']}-{v['max']}){x}")
        print(f"  {name:17} " + "  ".join(cells))


if __name__ == "__main__":
    main()
