"""Wall time of `janus-sip-call` split into phases (target: the whole scenario under 10 s).

Run: .venv/bin/python benchmarks/bench_gateway.py [--runs 5] [--kind aiortc|chromium]
Each run is a real `harness run`-equivalent: lab up, components ready (coturn, Kamailio,
Janus, baresip), peer ready, call connected through Janus's SIP plugin, checks on the
pcaps, tear-down; plus the process wall time of `harness run` itself for one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness.config.scenario import load_scenarios
from harness.scenario.runner import run_scenario_sync

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "gateway" / "janus-sip-call.yaml"
PHASES = ("lab_up", "components_ready", "peers_ready", "steps", "checks", "teardown", "total")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kind", default="aiortc", choices=["aiortc", "chromium"])
    args = ap.parse_args()
    runs = max(1, min(args.runs, 20))
    scenario = next(s for s in load_scenarios(SCENARIO) if s.name.endswith(args.kind))
    samples: dict[str, list[float]] = {p: [] for p in PHASES}
    connected = []
    for i in range(runs):
        r = run_scenario_sync(scenario, seed=1000 + i)
        if not r.passed:
            print(r.failure_text(), file=sys.stderr)
            return 1
        for p in PHASES:
            samples[p].append(r.timings.get(p, 0.0))
        call = next((s for s in r.steps if s.kind == "janus_call"), None)
        if call is not None:
            connected.append(call.duration_s)
    t0 = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            str(SCENARIO),
            "--only",
            scenario.name,
            "--no-report",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - t0
    out = {
        "scenario": scenario.name,
        "runs": runs,
        "phases_s_median": {p: round(statistics.median(v), 3) for p, v in samples.items()},
        "phases_s_max": {p: round(max(v), 3) for p, v in samples.items()},
        "janus_call_step_s_median": round(statistics.median(connected), 3) if connected else None,
        "harness_run_process_wall_s": round(wall, 2),
        "harness_run_exit": cli.returncode,
        "target_total_s": 10,
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
