"""Start-up time of `harness --help` and `harness validate`, as whole processes.

    .venv/bin/python benchmarks/bench_cli.py [--reference /work/main] [--repeat 7]

Each command runs as a fresh `python -m harness ...` in the tree under test (this
checkout) and, with --reference, in another checkout of the harness, alternating
(tree, reference, tree, ...) so both see the same machine load. Medians of --repeat
runs of wall-clock and CPU (user + system) time, side by side with their ratio.
Target (issue 16): --help and validate of one scenario under 0.3 s wall.

Both trees run with this interpreter (the tree's own directory first on sys.path),
after one unmeasured warm-up run that writes their bytecode caches: what an installed
harness sees. Targets: the flagship call, the largest matrix, every shipped file.
"""

from __future__ import annotations

import argparse
import glob
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(tree: Path) -> dict[str, list[str]]:
    every = sorted(glob.glob(str(tree / "topologies/*.yaml")))
    every += sorted(glob.glob(str(tree / "scenarios/*/*.yaml")))
    return {
        "--help": ["--help"],
        "validate janus-sip-call": [
            "validate",
            str(tree / "scenarios/gateway/janus-sip-call.yaml"),
        ],
        "validate janus-sip-ice-restart (matrix)": [
            "validate",
            str(tree / "scenarios/gateway/janus-sip-ice-restart.yaml"),
        ],
        f"validate all ({len(every)} files)": ["validate", *every],
    }


def run_once(tree: Path, args: list[str]) -> tuple[float, float]:
    """(wall, cpu) seconds of one `python -m harness ARGS` run in `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=tree,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: harness {' '.join(args[:2])} failed:\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, help="another checkout to compare with")
    ap.add_argument("--repeat", type=int, default=7)
    opts = ap.parse_args()
    trees = {"tree": ROOT} | ({"reference": opts.reference.resolve()} if opts.reference else {})
    cmds = {label: commands(tree) for label, tree in trees.items()}
    names = list(cmds["tree"])
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for label, tree in trees.items():  # warm-up: bytecode caches written, files in page cache
        for name in names:
            run_once(tree, cmds[label][name])
    for _ in range(opts.repeat):
        for name in names:
            for label, tree in trees.items():
                times.setdefault((name, label), []).append(run_once(tree, cmds[label][name]))
    print(f"medians of {opts.repeat} runs, seconds (wall / cpu)")
    head = f"{'command':42}" + "".join(f"{label:>18}" for label in trees)
    print(head + ("      ratio (wall)" if len(trees) > 1 else ""))
    for name in names:
        med = {
            label: tuple(statistics.median(x[i] for x in times[(name, label)]) for i in (0, 1))
            for label in trees
        }
        row = f"{name:42}" + "".join(f"{w:>10.3f} / {c:.3f}" for w, c in med.values())
        if len(trees) > 1:
            row += f"{med['tree'][0] / med['reference'][0]:>12.2f}"
        print(row)


if __name__ == "__main__":
    main()
