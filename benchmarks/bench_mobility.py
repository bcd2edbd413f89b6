"""Wi-Fi -> LTE handoff: media gap and time to recover per peer kind and strategy.

    .venv/bin/python benchmarks/bench_mobility.py [--repeats 10] [--seed 100] [--only aiortc]
                                                  [--json out.json]

Runs the restart cells of scenarios/mobility/handoff-p2p.yaml (phone on peer-a,
aiortc desk on peer-b, the phone's app restarts ICE on the network-change signal):
break-before-make with 500 ms dark (`bbm`) and make-before-break with 1 s overlap
(`mbb`), `--repeats` times each with seeds seed, seed+1, ... Metrics come from the
captures (harness/analysis/recovery.py), per direction: `up` received at the desk,
`down` received on the phone's interfaces. Prints median and worst. Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from harness.analysis.analyzer import analyze_file
from harness.analysis.recovery import analyse, read_log
from harness.analysis.session import build
from harness.config.scenario import load_scenarios
from harness.scenario.runner import run_scenario

ROOT = Path(__file__).resolve().parents[1]
CELLS = [
    "handoff-p2p-aiortc-bbm-restart",
    "handoff-p2p-aiortc-mbb-restart",
    "handoff-p2p-chromium-bbm-restart",
    "handoff-p2p-chromium-mbb-restart",
]
METRICS = ("largest_gap_s", "time_to_recover_s")


def measure(run_dir: Path) -> dict[str, Any]:
    fixed = build(analyze_file(run_dir / "peer-b-eth0.pcap"))
    phone = [build(analyze_file(p)) for p in sorted(run_dir.glob("peer-a-*.pcap"))]
    return analyse(fixed, read_log(run_dir), mobile=phone, kind="handoff").to_dict()


def summarise(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    missing = f" ({len(values) - len(got)} never)" if len(got) < len(values) else ""
    return (
        f"median {statistics.median(got) * 1000:6.0f} ms  worst {max(got) * 1000:6.0f} ms{missing}"
    )


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--only", default="")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    scenarios = {
        s.name: s for s in load_scenarios(ROOT / "scenarios" / "mobility" / "handoff-p2p.yaml")
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name in CELLS:
        if args.only not in name:
            continue
        for k in range(args.repeats):
            t = time.perf_counter()
            r = await run_scenario(scenarios[name], seed=args.seed + k)
            row: dict[str, Any] = {"seed": args.seed + k, "passed": r.passed, "error": r.error}
            try:
                row.update(measure(Path(r.run_dir)))
            except Exception as exc:  # a run without the metrics is reported, not hidden
                row["error"] = row["error"] or f"{type(exc).__name__}: {exc}"
            out.setdefault(name, []).append(row)
            print(
                f"{name} seed {args.seed + k}: {time.perf_counter() - t:.1f} s, "
                + ", ".join(
                    f"{d} gap {row.get(d, {}).get('largest_gap_s')}" for d in ("up", "down")
                )
                + (f" ERROR {row['error']}" if row["error"] else ""),
                flush=True,
            )
            if r.passed:
                shutil.rmtree(r.run_dir, ignore_errors=True)
    print(f"\n{'cell':36} {'dir':5} {'metric':18} result over {args.repeats} repeats")
    for name, rows in out.items():
        for d in ("up", "down"):
            for m in METRICS:
                vals = [row.get(d, {}).get(m) for row in rows]
                print(f"{name:36} {d:5} {m:18} {summarise(vals)}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
