"""Capture rings side by side: what starting them costs the rest of the machine, what they drop.

A scenario starts one tcpdump per capture point, and in CI another lab's call is running
meanwhile. The kernel allocates and zeroes each packet ring (tcpdump's -B) in one
non-preemptible stretch; on a VM whose free memory has gone back to the host, zeroing
fresh pages is slow, so a large ring holds a CPU for as long as that takes.

Two measurements per ring size, alternated in one run (the machine is noisy):
- start: `--points` captures started at once in a lab, after `--churn-mb` of memory was
  allocated and freed (as a lab run before it does); a thread sleeping 10 ms at a time
  records how late it wakes (the stall every other process sees), and the tcpdumps'
  system time is read before they stop.
- drops: a paced UDP stream (`--pps` packets/s of `--size` bytes for `--seconds`) from
  peer-a to server, captured on server, with `--hogs` busy loops competing for the CPUs.

Run: .venv/bin/python benchmarks/bench_capture.py [--rings 8192,65536] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from harness.config.topology import load_topology
from harness.lab import Lab
from harness.scenario.stallwatch import StallWatch

TOPOLOGY = Path(__file__).parent.parent / "topologies" / "open-internet.yaml"
HZ = os.sysconf("SC_CLK_TCK")
SENDER = """
import socket, sys, time
n, pps, size, dst = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
data, t0 = b"x" * size, time.monotonic()
for i in range(n):
    while time.monotonic() < t0 + i / pps:
        pass
    s.sendto(data, (dst, 40000))
"""


def _hog(until: float) -> None:
    while time.monotonic() < until:
        pass


def churn(mb: int) -> None:
    """Touch and free `mb` MiB, then wait for the kernel to hand it back to the host."""
    if mb:
        bytearray(mb << 20)
        time.sleep(3.0)


def start_cost(lab: Lab, ring: int, points: int, churn_mb: int) -> dict[str, float]:
    churn(churn_mb)
    watch = StallWatch()  # the watch every scenario run has: how late a sleeper woke
    watch.start()
    time.sleep(0.05)
    cap = lab.capture([("peer-a", "eth0")] * points, ring_kib=ring)
    time.sleep(0.3)
    sys_s = 0.0
    for p in cap.points:
        assert p.proc is not None
        stat = Path(f"/proc/{p.proc.pid}/stat").read_text()
        sys_s += int(stat[stat.rindex(")") + 2 :].split()[12]) / HZ
    seen = watch.stop()
    cap.stop()
    return {"stall_ms": 1000 * seen.worst_s, "tcpdump_sys_ms": 1000 * sys_s}


def drops(lab: Lab, ring: int, pps: int, size: int, seconds: float, hogs: int) -> int:
    cap = lab.capture([("server", "eth0")], bpf="udp port 40000", ring_kib=ring)
    until = time.monotonic() + seconds + 1.0
    procs = [multiprocessing.Process(target=_hog, args=(until,)) for _ in range(hogs)]
    for p in procs:
        p.start()
    try:
        argv = [sys.executable, "-c", SENDER, str(int(pps * seconds)), str(pps), str(size)]
        lab.run("peer-a", [*argv, str(lab.topology.node("server").iface().address)])
    finally:
        for p in procs:
            p.join()
    cap.stop()
    return int(cap.points[0].stats.get("dropped", -1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rings", default="8192,65536", help="ring sizes in KiB (tcpdump -B)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--points", type=int, default=6, help="captures started at once")
    ap.add_argument("--churn-mb", type=int, default=2048)
    ap.add_argument("--pps", type=int, default=2500)
    ap.add_argument("--size", type=int, default=1200)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hogs", type=int, default=4)
    args = ap.parse_args()
    rings = [int(r) for r in args.rings.split(",")]
    lab = Lab(load_topology(TOPOLOGY), name="bench-capture")
    lab.up()
    rows: dict[int, list[dict[str, float]]] = {r: [] for r in rings}
    try:
        for k in range(args.repeat):
            for ring in rings:
                row = start_cost(lab, ring, args.points, args.churn_mb)
                row["dropped"] = drops(lab, ring, args.pps, args.size, args.seconds, args.hogs)
                rows[ring].append(row)
                print(f"[{k + 1}/{args.repeat}] ring {ring} KiB: {row}", file=sys.stderr)
    finally:
        lab.down()
    out = {
        "points": args.points,
        "churn_mb": args.churn_mb,
        "stream": f"{args.pps} pps x {args.size} B for {args.seconds} s, {args.hogs} hogs",
        "rings_kib": {
            ring: {
                "stall_ms_median": round(statistics.median(r["stall_ms"] for r in rs), 1),
                "stall_ms_max": round(max(r["stall_ms"] for r in rs), 1),
                "tcpdump_sys_ms_median": round(statistics.median(r["tcpdump_sys_ms"] for r in rs)),
                "dropped": [int(r["dropped"]) for r in rs],
            }
            for ring, rs in rows.items()
        },
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
