"""`harness analyze --json` of this tree and of a git ref, byte for byte, on the same files.

    .venv/bin/python benchmarks/same_output.py [--ref main] [FILE ...]

A speed change must not change what the analyser prints. Without FILEs it runs every
capture under tests/data/pcaps and tests/data/thirdparty (with its `.keys` key log when
there is one) and, with --cases, the three benchmark captures of bench_analyze.py.
The ref is exported with `git archive` and imported ahead of this tree (PYTHONPATH), so
it runs the pure-Python pcap walk; this tree runs the compiled one when it is built.
Exit status 1 and the differing files named when any output differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_analyze  # noqa: E402

CAPTURES = (".pcap", ".pcapng", ".cap")


def export(ref: str, into: Path, build: bool = False) -> Path:
    """The tree of git `ref` in `into` (git archive); with `build`, its C extensions built
    in place as an install builds them, and its bytecode compiled."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    if build:
        setup = "from setuptools import setup; setup()"
        subprocess.run(
            [sys.executable, "-c", setup, "build_ext", "--inplace", "-q"],
            cwd=into, capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run([sys.executable, "-m", "compileall", "-q", "harness"], cwd=into, check=True)
    return into


def analyze(src: Path, path: Path) -> bytes:
    keys = path.with_suffix(".keys")
    argv = [sys.executable, "-m", "harness.cli", "analyze", "--json", str(path)]
    argv += ["--keylog", str(keys)] if keys.is_file() else []
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(argv, capture_output=True, env=env, cwd=src)
    return done.stdout + done.stderr + str(done.returncode).encode()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ref", default="main")
    p.add_argument("--cases", action="store_true", help="also the three benchmark captures")
    p.add_argument("files", nargs="*", type=Path)
    args = p.parse_args()
    files = args.files or sorted(
        f
        for d in ("tests/data/pcaps", "tests/data/thirdparty")
        for f in (ROOT / d).rglob("*")
        if f.suffix in CAPTURES
    )
    with tempfile.TemporaryDirectory() as tmp:
        ref = export(args.ref, Path(tmp) / "ref")
        if args.cases:
            plan = [
                ("a", bench_analyze.SOURCE, 250_000, True),
                ("b", bench_analyze.RELAYED, 250_000, True),
                ("c", bench_analyze.RELAYED, 100_000, False),
            ]
            for name, source, packets, media in plan:
                case = Path(tmp) / f"case-{name}.pcap"
                bench_analyze.build_capture(source, case, packets, media)
                files.append(case)
        differ = [f for f in files if analyze(ref, f) != analyze(ROOT, f)]
    for f in differ:
        print(f"differs: {f}")
    print(f"{len(files) - len(differ)} of {len(files)} files: the same output as {args.ref}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
