"""`harness report RESULTS_DIR [--out DIR]`: the HTML conformance report from saved runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.reports.html import build_report, find_results


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="HTML conformance report (and JSON) from run results")
    p.add_argument("results", type=Path, help="a run directory, or a directory of them")
    p.add_argument("--out", type=Path, help="report directory (default: RESULTS_DIR/report)")
    p.add_argument("--no-diagrams", action="store_true", help="skip ladders and timelines")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    t = time.perf_counter()
    results = find_results(args.results)
    if not results:
        print(f"no result.json under {args.results}")
        return 2
    out = args.out or (args.results / "report" if args.results.is_dir() else Path("report"))
    index = build_report(results, out, draw=not args.no_diagrams)
    took = time.perf_counter() - t
    print(f"{len(results)} runs -> {index} ({index.parent / 'report.json'}) in {took:.1f} s")
    return 0
