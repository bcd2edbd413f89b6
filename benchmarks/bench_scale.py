"""Scale: labs at once, shards, and what one lab costs (issue #16's acceptance numbers).

Side by side in one run, on this machine:
  matrix   the 16-cell restart matrix with --jobs 1 and with each N of --jobs-list
  shards   the slowest shard of N = 2 and 4 (shards run one after another here, so each
           shard's time is its own: the CI wall time is the slowest one)
  suite    the CI suite's lab part (scenarios/ under pytest) serial and with -n N
  cost     CPU cores (user+sys / wall) and peak memory (PSS, summed over every process in
           the lab's namespaces) of one lab per peer kind: the numbers --jobs auto uses

Run: .venv/bin/python benchmarks/bench_scale.py [matrix] [shards] [suite] [cost]
        [--jobs-list 2,3,4] [--out reports/bench-scale.json]
The machine is noisy: quote medians and ratios, and rerun on a calm machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness.lab.registry import all_states
from harness.runtime.nsutil import list_netns, netns_pids

MATRIX = "scenarios/gateway/janus-sip-ice-restart.yaml"
HARNESS = [sys.executable, "-m", "harness.cli"]
COST_CELLS = {
    "aiortc": (MATRIX, "janus-sip-ice-restart-trickle-relay-public-aiortc"),
    "chromium": (MATRIX, "janus-sip-ice-restart-trickle-relay-public-chromium"),
}


def timed(argv: list[str], **kw: Any) -> tuple[float, int, str]:
    """Wall seconds, exit status and output tail of argv; kw: subprocess.run's (cwd, env, ...)."""
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True, **kw)
    return time.perf_counter() - t, p.returncode, p.stdout[-2000:] + p.stderr[-2000:]


def run_matrix(jobs: int, out: Path) -> dict[str, object]:
    wall, rc, text = timed(
        [
            *HARNESS,
            "run",
            MATRIX,
            "--jobs",
            str(jobs),
            "--seed",
            "11",
            "--no-report",
            "--out",
            str(out),
        ]
    )
    results = (
        json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else []
    )
    verdicts = {
        r["scenario"]: "pass" if r["passed"] else ("xfail" if r["known_failure"] else "fail")
        for r in results
    }
    return {"jobs": jobs, "wall_s": round(wall, 1), "rc": rc, "verdicts": verdicts}


def bench_matrix(jobs_list: list[int], tmp: Path) -> dict[str, object]:
    runs = [run_matrix(n, tmp / f"matrix-j{n}") for n in [1, *jobs_list]]
    base = runs[0]["wall_s"]
    for r in runs:
        r["speedup"] = round(base / r["wall_s"], 2)  # type: ignore[operator]  # wall_s: float
        r["same_verdicts_as_jobs_1"] = r["verdicts"] == runs[0]["verdicts"]
    return {"runs": runs}


def planned_shards(seq: Path) -> dict[str, object]:
    """Each shard's time from the sequential run's measured per-run times, split by the real
    planner (interleaved, and balanced by those durations): the wall time N CI machines take."""
    from harness.scenario.shard import load_durations, plan

    d = load_durations([seq / "runs"])
    names = [r["scenario"] for r in json.loads((seq / "results.json").read_text())]
    out: dict[str, object] = {"sequential_s": round(sum(d.values()), 1)}
    for n in (2, 4):
        for how, dur in (("interleaved", None), ("balanced", d)):
            shards = plan(names, n, dur)
            loads = [
                round(sum(d[x] for x, s in zip(names, shards, strict=True) if s == k), 1)
                for k in range(1, n + 1)
            ]
            out[f"N={n} {how}"] = {"shard_s": loads, "slowest_s": max(loads)}
    return out


def bench_shards(tmp: Path, durations: Path | None) -> dict[str, object]:
    out: dict[str, object] = {}
    for n in (2, 4):
        walls = []
        for k in range(1, n + 1):
            extra = ["--durations", str(durations)] if durations else []
            wall, rc, _ = timed(
                [
                    *HARNESS,
                    "run",
                    MATRIX,
                    "--shard",
                    f"{k}/{n}",
                    *extra,
                    "--seed",
                    "11",
                    "--no-report",
                    "--out",
                    str(tmp / f"shard-{n}-{k}"),
                ]
            )
            walls.append(round(wall, 1))
        merged = timed(
            [
                *HARNESS,
                "report",
                *[str(tmp / f"shard-{n}-{k}") for k in range(1, n + 1)],
                "--out",
                str(tmp / f"merged-{n}"),
            ]
        )
        out[f"N={n}"] = {
            "shard_walls_s": walls,
            "slowest_s": max(walls),
            "merge_rc": merged[1],
            "balanced_by_durations": bool(durations),
        }
    return out


def bench_suite(jobs_list: list[int], paths: list[str]) -> dict[str, object]:
    """The CI suite's lab part that ci/test.sh runs in parallel: scenarios/ under pytest."""
    runs = []
    for n in [0, *jobs_list]:
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *paths]
        argv += ["-n", str(n)] if n else []
        wall, rc, text = timed(argv)
        runs.append(
            {
                "xdist_workers": n,
                "wall_s": round(wall, 1),
                "rc": rc,
                "tail": text.strip().splitlines()[-1:],
            }
        )
    base = runs[0]["wall_s"]
    for r in runs:
        r["speedup"] = round(base / r["wall_s"], 2)  # type: ignore[operator]  # wall_s: float
    return {"runs": runs}


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])  # utime + stime
    except (OSError, IndexError):
        return 0


def cost_of(kind: str, file: str, name: str) -> dict[str, object]:
    """Run one scenario and sample its lab's processes: peak PSS, CPU seconds over wall time."""
    before = {s.name for s in all_states()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.scenario.worker", file, name, "--seed", "11"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peak_kb, stop = 0, threading.Event()
    ticks: dict[int, int] = {}  # CPU ticks by pid, the most seen

    def sample() -> None:
        nonlocal peak_kb
        while not stop.is_set():
            labs = {s.name for s in all_states() if s.owner_pid == proc.pid} - before
            pids = {proc.pid}
            for ns in list_netns():
                if any(ns.startswith(f"rh-{lab}.") for lab in labs):
                    pids.update(netns_pids(ns))
            peak_kb = max(peak_kb, sum(_pss_kb(p) for p in pids))
            for p in pids:
                ticks[p] = max(ticks.get(p, 0), _cpu_ticks(p))
            stop.wait(0.25)

    t = time.perf_counter()
    th = threading.Thread(target=sample)
    th.start()
    out = proc.communicate()[0]
    wall = time.perf_counter() - t
    stop.set()
    th.join()
    cpu_s = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return {
        "peer": kind,
        "scenario": name,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu_s, 1),
        "cores": round(cpu_s / wall, 2),
        "peak_pss_mib": round(peak_kb / 1024),
        "ok": '"run_dir"' in out,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="*", default=["cost", "matrix", "shards", "suite"])
    ap.add_argument("--jobs-list", default="2,3,4")
    ap.add_argument("--suite-paths", default="scenarios", help="comma-separated pytest paths")
    ap.add_argument("--durations", type=Path, help="results of a previous run, to balance shards")
    ap.add_argument("--out", type=Path, default=Path("reports/bench-scale.json"))
    args = ap.parse_args()
    jobs_list = [int(x) for x in args.jobs_list.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    load = os.getloadavg()
    res: dict[str, object] = {
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 1) for x in load],
    }
    if "cost" in args.what:
        res["cost"] = [cost_of(k, f, n) for k, (f, n) in COST_CELLS.items()]
    if "matrix" in args.what:
        res["matrix"] = bench_matrix(jobs_list, tmp)
    if "planned-shards" in args.what:
        res["planned_shards"] = planned_shards(tmp / "matrix-j1")
    if "shards" in args.what:
        res["shards"] = bench_shards(
            tmp,
            args.durations
            or (tmp / "matrix-j1" / "runs" if (tmp / "matrix-j1").exists() else None),
        )
    if "suite" in args.what:
        suite = bench_suite(jobs_list, args.suite_paths.split(","))
        suite["paths"] = args.suite_paths
        res["suite"] = suite
    res["loadavg_at_end"] = [round(x, 1) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
