"""Reliability, measured: repeated flagship runs, SIGKILL + `lab gc` soak, YAML and pcap fuzzing.

Every mode is seeded and bounded in count and time; each prints one JSON summary.

    .venv/bin/python benchmarks/bench_reliability.py flagship --runs 50 --seed 1
    .venv/bin/python benchmarks/bench_reliability.py kill --runs 50 --seed 1
    .venv/bin/python benchmarks/bench_reliability.py fuzz-yaml --inputs 10000 --seed 1
    .venv/bin/python benchmarks/bench_reliability.py fuzz-pcap --packets 1000000 --seed 1

`flagship`: the runs of ci/flagship.sh, one `harness run` per seed; a verdict is unexpected
when a plain cell fails or a known-failure cell passes. `--scenario FILE [--only CELL]`
runs other cells the same way, e.g. to measure how often an intermittent known failure
happens (the verdicts per cell are counted):

    .venv/bin/python benchmarks/bench_reliability.py flagship --runs 20 \
        --scenario scenarios/p2p/calls.yaml --only p2p-aiortc-chromium-cgnat-double
 `kill`: a gateway scenario killed
with SIGKILL at a random moment, then `harness lab gc`; every leftover is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NotRequired, TypedDict

ROOT = Path(__file__).resolve().parent.parent
HARNESS = [sys.executable, "-m", "harness"]
FLAGSHIP = [
    "scenarios/gateway/janus-sip-call.yaml",
    "scenarios/gateway/janus-sip-ice-restart.yaml",
    "--only",
    "janus-sip-call-chromium",
    "--only",
    "janus-sip-ice-restart-notrickle-relay-nat-chromium",
]
KILL_SCENARIO = ["scenarios/gateway/janus-sip-call.yaml", "--only", "janus-sip-call-aiortc"]


class Cell(TypedDict):
    """One cell's tally in the flagship summary."""

    runs: int
    unexpected: int
    seeds: list[int]  # the seeds of the unexpected verdicts
    verdicts: dict[str, int]
    failure_rate: NotRequired[float]  # unexpected / runs, once all runs are done


def flagship(args: argparse.Namespace) -> dict[str, object]:
    """Run the flagship cells once per seed; count verdicts per cell."""
    cells: dict[str, Cell] = {}
    deadline = time.monotonic() + args.max_minutes * 60
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.runs):
            if time.monotonic() > deadline:
                break
            seed = args.seed + k
            js = Path(tmp) / f"{seed}.json"
            cells_argv = FLAGSHIP
            if args.scenario:
                cells_argv = [*args.scenario, *(x for c in args.only for x in ("--only", c))]
            cmd = [
                *HARNESS,
                "run",
                *cells_argv,
                "--seed",
                str(seed),
                "--no-report",
                "--json",
                str(js),
            ]
            try:
                subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
            except subprocess.TimeoutExpired:
                subprocess.run([*HARNESS, "lab", "gc"], cwd=ROOT, capture_output=True)
            results = json.loads(js.read_text()) if js.exists() else []
            if not results:
                results = [{"scenario": "(harness run)", "passed": False, "error": "no result"}]
            for r in results:
                c = cells.setdefault(
                    r["scenario"], {"runs": 0, "unexpected": 0, "seeds": [], "verdicts": {}}
                )
                known = bool(r.get("known_failure"))
                verdict = r.get("verdict") or ("xfail" if known else "pass")
                # the verdict (harness/scenario/verdict.py) also checks a known failure's signature
                unexpected = (
                    verdict not in ("pass", "xfail") if "verdict" in r else r["passed"] == known
                )
                c["runs"] += 1
                tally = c["verdicts"]
                tally[verdict] = tally.get(verdict, 0) + 1
                if unexpected:
                    c["unexpected"] += 1
                    c["seeds"].append(seed)
                with out.open("a") as f:
                    line = {"seed": seed, "scenario": r["scenario"], "passed": r["passed"]}
                    line |= {"verdict": r.get("verdict", ""), "reason": r.get("verdict_reason", "")}
                    line |= {"known": known, "unexpected": unexpected, "error": r.get("error", "")}
                    f.write(json.dumps(line) + "\n")
    for c in cells.values():
        c["failure_rate"] = round(c["unexpected"] / c["runs"], 3)
    return {"mode": "flagship", "seed": args.seed, "cells": cells}


def _lines(cmd: list[str]) -> list[str]:
    return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()


def _host_links() -> set[str]:
    return {ln.split()[0] for ln in _lines(["ip", "-br", "link"]) if ln.startswith(("n0", "b0"))}


def _leftovers(names: list[str], marker: str, links_before: set[str]) -> dict[str, list[str]]:
    """What is left of the labs `names` and of processes carrying `marker` in their environment."""
    from harness.lab.registry import STATE_DIR

    netns = [
        ln.split()[0]
        for ln in _lines(["ip", "netns", "list"])
        if any(ln.startswith(f"rh-{n}.") for n in names)
    ]
    nft = [
        f"{ns}:{t}"
        for ns in netns
        for t in _lines(["ip", "netns", "exec", ns, "nft", "list", "tables"])
    ]
    procs = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (p / "environ").read_bytes():
                procs.append(p.name)
        except OSError:
            continue
    containers = []
    if Path("/var/run/docker.sock").exists():
        containers = [
            c
            for c in _lines(["docker", "ps", "-a", "--format", "{{.Names}}"])
            if any(n in c for n in names)
        ]
    return {
        "namespaces": netns,
        "nft_tables": nft,
        "veths": sorted(_host_links() - links_before),
        "state_files": [n for n in names if (STATE_DIR / f"{n}.json").exists()],
        "processes": procs,
        "containers": containers,
    }


def kill(args: argparse.Namespace) -> dict[str, object]:
    """SIGKILL a gateway run at a random moment, `lab gc`, and count what is left of it."""
    from harness.lab.registry import all_states

    rng = random.Random(args.seed)
    totals: dict[str, int] = {}
    runs = []
    for k in range(args.runs):
        marker = f"RH_SOAK={os.getpid()}-{k}"
        env = dict(os.environ, RH_SOAK=marker.split("=", 1)[1])
        links_before = _host_links()
        delay = rng.uniform(0.0, args.max_delay)
        p = subprocess.Popen(
            [*HARNESS, "run", *KILL_SCENARIO, "--no-report"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # kill at a random moment of the lab's life: count from its state file (written
        # before anything is created), so every kill finds a lab to leave behind
        deadline = time.monotonic() + 120
        names: list[str] = []
        while not names and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            names = [s.name for s in all_states() if s.owner_pid == p.pid]
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        gc = subprocess.run([*HARNESS, "lab", "gc"], cwd=ROOT, capture_output=True, text=True)
        left = _leftovers(names, marker, links_before)
        n = {kind: len(v) for kind, v in left.items()}
        for kind, v in n.items():
            totals[kind] = totals.get(kind, 0) + v
        runs.append(
            {"run": k, "kill_after_s": round(delay, 2), "labs": names, "gc_rc": gc.returncode, **n}
        )
        if any(n.values()) or gc.returncode:
            print(f"run {k}: left {left}; gc: {gc.stdout}{gc.stderr[-2000:]}", file=sys.stderr)
    with_lab = sum(1 for r in runs if r["labs"])
    return {
        "mode": "kill",
        "seed": args.seed,
        "runs": len(runs),
        "killed_with_a_lab_up": with_lab,
        "leftovers": totals,
        "per_run": runs,
    }


def fuzz_yaml(args: argparse.Namespace) -> dict[str, object]:
    from tests.fuzzing import fuzz_config_files

    return {"mode": "fuzz-yaml", "seed": args.seed, **fuzz_config_files(args.inputs, args.seed)}


def fuzz_pcap(args: argparse.Namespace) -> dict[str, object]:
    from tests.fuzzing import fuzz_pcap_packets

    return {"mode": "fuzz-pcap", "seed": args.seed, **fuzz_pcap_packets(args.packets, args.seed)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    f = sub.add_parser("flagship")
    f.add_argument("--runs", type=int, default=50)
    f.add_argument("--max-minutes", type=float, default=120)
    f.add_argument("--out", default="reports/reliability-flagship.jsonl")
    f.add_argument("--scenario", action="append", default=[], help="instead of the flagship's")
    f.add_argument("--only", action="append", default=[], help="a cell of --scenario")
    k = sub.add_parser("kill")
    k.add_argument("--runs", type=int, default=50)
    k.add_argument("--max-delay", type=float, default=15.0, help="after the lab's state file")
    y = sub.add_parser("fuzz-yaml")
    y.add_argument("--inputs", type=int, default=10_000)
    c = sub.add_parser("fuzz-pcap")
    c.add_argument("--packets", type=int, default=1_000_000)
    for p in (f, k, y, c):
        p.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    Path("reports").mkdir(exist_ok=True)
    mode = {"flagship": flagship, "kill": kill, "fuzz-yaml": fuzz_yaml, "fuzz-pcap": fuzz_pcap}
    summary = mode[args.mode](args)
    print(json.dumps(summary, indent=1))
    bad = summary.get("tracebacks") or summary.get("crashes")
    leftovers = summary.get("leftovers", {})  # kill: leftovers by kind
    cells = summary.get("cells", {})  # flagship: Cell by name
    assert isinstance(leftovers, dict) and isinstance(cells, dict)
    bad = bad or any(leftovers.values())
    bad = bad or any(c["unexpected"] for c in cells.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
