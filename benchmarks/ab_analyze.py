"""Whole-process CPU time of `harness analyze --json FILE`: this tree and a git ref, side by
side in one run.

    .venv/bin/python benchmarks/ab_analyze.py [--ref main] [--runs 21] [--case c] [FILE ...]

A speed change is judged against the code it changes, on the same machine at the same
moment: the ref is exported (git archive) with its C extensions built in place, and runs
of the two trees alternate, so both see the same load. Each run is `python -m harness.cli
analyze --json FILE` with PYTHONPATH naming the tree, started from a directory of neither
(`-m` puts the working directory first on the path). `--case a|b|c` adds that capture
of bench_analyze.py --cases. Prints JSON: CPU medians in ms per tree, and ours / ref.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_analyze  # noqa: E402
from same_output import export  # noqa: E402

CASES = {
    "a": (bench_analyze.SOURCE, 250_000, True),
    "b": (bench_analyze.RELAYED, 250_000, True),
    "c": (bench_analyze.RELAYED, 100_000, False),
}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ref", default="main")
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--case", action="append", default=[], choices=sorted(CASES))
    p.add_argument("files", nargs="*", type=Path)
    args = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"ours": ROOT, args.ref: export(args.ref, Path(tmp) / "ref", build=True)}
        files = [f.resolve() for f in args.files]
        for name in args.case:
            files.append(Path(tmp) / f"case-{name}.pcap")
            bench_analyze.build_capture(CASES[name][0], files[-1], *CASES[name][1:])
        for f in files:
            cpu: dict[str, list[float]] = {k: [] for k in trees}
            for tree in trees.values():  # a run each first, untimed: caches filled alike
                argv = [sys.executable, "-m", "harness.cli", "analyze", "--json", str(f)]
                bench_analyze.whole_process(argv, {**env, "PYTHONPATH": str(tree)}, cwd=tmp)
            for i in range(args.runs):
                for name, tree in trees.items():
                    argv = [sys.executable, "-m", "harness.cli", "analyze", "--json", str(f)]
                    run_env = {**env, "PYTHONPATH": str(tree)}
                    cpu[name].append(bench_analyze.whole_process(argv, run_env, cwd=tmp)[1])
                print(f"{f.name}: run {i + 1}/{args.runs}", file=sys.stderr, end="\r")
            med = {k: round(statistics.median(v) * 1e3, 1) for k, v in cpu.items()}
            out = {"file": str(f), "runs": args.runs, "cpu_median_ms": med}
            out["ours_over_ref"] = round(med["ours"] / med[args.ref], 3)
            print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
