"""Bring-up and tear-down time of a 6-node NAT topology (target: up < 50 ms, down < 50 ms).

Bring-up runs no program: each namespace is built on its own thread over rtnetlink and
libnftables (docs/architecture.md). The lab is usable when up() returns: the first ping,
right after, crosses a NAT. What remains is kernel work behind one lock (rtnl_lock) that
every lab of the machine shares. Back to back, a bring-up also waits for the kernel to free
the namespaces of the lab torn down just before: that runs after down() returns and holds
rtnl_lock for 50-60 ms (measured: the first rtnetlink request after a down waits that
long). `--gap 0.3` leaves it that time, as the seconds of a scenario do. The numbers move
with the machine's load: compare side by side.

Run: .venv/bin/python benchmarks/bench_lab.py [--runs 30] [--gap SECONDS]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from harness.config.topology import load_topology
from harness.lab import Lab

TOPOLOGY = Path(__file__).parent / "topologies" / "six-node-nat.yaml"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--gap", type=float, default=0.0, help="seconds between down and next up")
    args = ap.parse_args()
    topo = load_topology(TOPOLOGY)
    ups, downs, firsts = [], [], []
    for i in range(args.runs):
        lab = Lab(topo, name=f"bench-{i}")
        t0 = time.perf_counter()
        lab.up()
        ups.append(time.perf_counter() - t0)
        # the lab is usable at once: the first packet crosses both NATs
        t1 = time.perf_counter()
        r = lab.run("peer-a", ["ping", "-c1", "-W1", "198.18.0.12"], check=False)
        firsts.append(time.perf_counter() - t1 if r.returncode == 0 else float("nan"))
        t0 = time.perf_counter()
        lab.down()
        downs.append(time.perf_counter() - t0)
        time.sleep(args.gap)

    def stats(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {
            "median_ms": round(1000 * statistics.median(xs), 1),
            "p90_ms": round(1000 * xs[int(0.9 * (len(xs) - 1))], 1),
            "max_ms": round(1000 * xs[-1], 1),
        }

    out = {
        "topology": "six-node-nat (6 nodes + switch namespace, 3 bridges, 7 veth, 2 nft rulesets)",
        "runs": args.runs,
        "gap_s": args.gap,
        "up": stats(ups),
        "down": stats(downs),
        "first_ping_ms": stats([x for x in firsts if x == x] or [float("nan")]),
        "first_ping_lost": sum(1 for x in firsts if x != x),  # the lab was not usable yet
        "targets": {"up_ms": 50, "down_ms": 50},
    }
    print(json.dumps(out, indent=1))
    ok = (
        out["first_ping_lost"] == 0
        and out["up"]["median_ms"] < 50
        and out["down"]["median_ms"] < 50
    )
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
