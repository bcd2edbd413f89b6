"""Time to build the HTML conformance report (with a ladder and a timeline per run) for
100 scenario results.

The 100 results are synthesised by copying real run directories (result.json, the
lab's hosts file and the pcaps) under new names, round-robin over the runs given
(default: the newest real runs in captures/ that have pcaps); each copy's paths are
rewritten to point at its own pcaps, so every run is analysed on its own.

    .venv/bin/python benchmarks/bench_report.py [--runs 100] [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from harness.reports.html import build_report, find_results

ROOT = Path(__file__).resolve().parent.parent


def sources(given: list[Path], n: int = 6) -> list[Path]:
    if given:
        return given
    runs = sorted(ROOT.glob("captures/*/result.json"), key=lambda p: p.stat().st_mtime)
    good = [p.parent for p in runs if json.loads(p.read_text()).get("pcaps")]
    return good[-n:]


def synthesise(src: list[Path], count: int, into: Path) -> None:
    for i in range(count):
        s = src[i % len(src)]
        d = into / f"{s.name}-copy{i:03d}"
        (d / "etc").mkdir(parents=True)
        data = json.loads((s / "result.json").read_text())
        data["run_dir"] = str(d)
        data["pcaps"] = [str(d / Path(p).name) for p in data["pcaps"]]
        for p in map(Path, json.loads((s / "result.json").read_text())["pcaps"]):
            if p.is_file():
                shutil.copy(p, d / p.name)
        if (s / "etc" / "hosts").is_file():
            shutil.copy(s / "etc" / "hosts", d / "etc" / "hosts")
        (d / "result.json").write_text(json.dumps(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs_dirs", nargs="*", type=Path)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = sources(args.runs_dirs)
    if not src:
        raise SystemExit("no real runs with pcaps in captures/: run a scenario first")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        root = Path(tmp)
        synthesise(src, args.runs, root / "results")
        pcap_bytes = sum(p.stat().st_size for p in (root / "results").rglob("*.pcap"))
        times, bare = [], []
        for k in range(args.repeat):
            t = time.perf_counter()
            results = find_results(root / "results")
            build_report(results, root / f"report{k}")
            times.append(time.perf_counter() - t)
            t = time.perf_counter()
            build_report(find_results(root / "results"), root / f"bare{k}", draw=False)
            bare.append(time.perf_counter() - t)
        size = sum(p.stat().st_size for p in (root / "report0").rglob("*") if p.is_file())
    print(f"sources: {', '.join(p.name for p in src)}")
    print(f"{args.runs} results, {pcap_bytes / 1e6:.1f} MB of pcaps")
    print(
        f"report with ladders and timelines: median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}), {size / 1e6:.1f} MB written"
    )
    print(f"matrix and evidence only (--no-diagrams): median {statistics.median(bare):.2f} s")


if __name__ == "__main__":
    main()
