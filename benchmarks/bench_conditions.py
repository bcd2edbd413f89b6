"""Link engine accuracy and capacity, next to the unimpaired veth path in the same run.

    sudo .venv/bin/python benchmarks/bench_conditions.py [--quick] [--json FILE]

For 100, 1000, 10000 and 50000 packets/s: delivered-delay error (p50, p99) for a
50 ms delay through the relay, the same flow on the plain veth path, the engine's
CPU per packet, then the highest rate with p99 error under 2 ms and no loss.
Also measures the machine's wake-up floor (a real-time task sleeping 0.5 ms), which
bounds any userspace engine on a shared machine.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.conditions.apply import shape_link  # noqa: E402
from harness.conditions.measure import ProbeResult, measure, percentile  # noqa: E402
from harness.lab import Lab  # noqa: E402

DELAY_MS = 50.0
RATES = [100, 1000, 10000, 50000]
SEARCH = [20000, 50000, 75000, 100000]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def errors(r: ProbeResult, target: float) -> dict[str, float]:
    err = sorted(abs((rx - tx) / 1e6 - target) for _, tx, rx in r.arrivals)
    txs = sorted(tx for _, tx, _ in r.arrivals)
    offered = (len(txs) - 1) / ((txs[-1] - txs[0]) / 1e9) if len(txs) > 1 else 0.0
    return {
        "p50_err_ms": percentile(err, 50),
        "p99_err_ms": percentile(err, 99),
        "loss_pct": r.loss_pct,
        "sent_pps": offered,
    }


def wake_floor(seconds: float = 2.0) -> dict[str, float]:
    """Oversleep of a SCHED_FIFO task asking for 0.5 ms, with 1 ns timer slack."""
    ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)
    old = os.sched_getscheduler(0), os.sched_getparam(0)
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    lat = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            due = time.monotonic_ns() + 500_000
            select.select([], [], [], 0.0005)
            lat.append((time.monotonic_ns() - due) / 1e6)
    finally:
        os.sched_setscheduler(0, old[0], old[1])
    lat.sort()
    return {"p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "max_ms": lat[-1]}


def flow(lab: Lab, rate: int, seconds: float) -> ProbeResult:
    count = max(500, int(rate * seconds))
    return measure(lab, "peer-a", "peer-b", rate=rate, count=count, linger=0.5)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1 s per rate instead of 3 s")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    seconds = 1.0 if args.quick else 3.0
    out: dict[str, object] = {"wake_floor": wake_floor()}
    rows = []
    with Lab("topologies/open-internet.yaml") as lab:
        lab.run("peer-a", ["ping", "-c1", "-W2", "198.18.0.11"], check=False)
        plain = {rate: errors(flow(lab, rate, seconds), 0.0) for rate in RATES}
        sh = shape_link(lab, "peer-a", "eth0", {"up": {"delay": DELAY_MS}})
        try:
            for rate in sorted(set(RATES + SEARCH)):
                c0 = cpu_seconds(sh.process.pid)
                r = flow(lab, rate, seconds)
                cpu = cpu_seconds(sh.process.pid) - c0
                e = errors(r, DELAY_MS)
                e["engine_us_per_pkt"] = 1e6 * cpu / max(1, r.received)
                rows.append((rate, plain.get(rate), e))
            sh.check_alive()
        finally:
            sh.close()
    ok = [rate for rate, _, e in rows if e["p99_err_ms"] < 2.0 and e["loss_pct"] == 0]
    out["rows"] = [{"rate": rate, "veth": p, "relay_50ms": e} for rate, p, e in rows]
    out["sustained_pps"] = max(ok) if ok else 0
    print(f"wake-up floor (SCHED_FIFO, 0.5 ms sleeps): {out['wake_floor']}")
    print(
        "| pps | veth p50/p99 ms | relay 50 ms: err p50/p99 ms | loss % | sent pps | engine us/pkt |"
    )
    print("|---|---|---|---|---|---|")
    for rate, p, e in rows:
        veth = f"{p['p50_err_ms']:.3f}/{p['p99_err_ms']:.3f}" if p else "-"
        print(
            f"| {rate} | {veth} | {e['p50_err_ms']:.3f}/{e['p99_err_ms']:.3f} | "
            f"{e['loss_pct']:.2f} | {e['sent_pps']:.0f} | {e['engine_us_per_pkt']:.1f} |"
        )
    print(f"highest rate with p99 error < 2 ms and no loss: {out['sustained_pps']} pps")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
